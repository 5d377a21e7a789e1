// Element look-ups and the message lines, shared by every part of the page.

export const $ = (selector, root = document) => root.querySelector(selector);
export const $$ = (selector, root = document) => Array.from(root.querySelectorAll(selector));

/** Put `text` in `element`, hidden while there is none. */
export function show(element, text) {
  element.textContent = text;
  element.hidden = !text;
}
