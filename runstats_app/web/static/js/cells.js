// The pieces that show a run's fields, shared by the runs table and the run dialog.

export function badge(status) {
  const span = document.createElement("span");
  span.className = `badge s-${status}`;
  span.textContent = status.replace("_", " ").toLowerCase();
  return span;
}

/** One chip per annotation; `removable` ones are list items with a remove button. */
export function annotationChips(annotations, removable) {
  return Object.entries(annotations || {}).map(([key, value]) => {
    const item = document.createElement(removable ? "li" : "span");
    item.className = "ann";
    const text = document.createElement("span");
    text.textContent = value === "" ? key : `${key}=${value}`;
    item.append(text);
    if (removable) {
      const remove = document.createElement("button");
      remove.type = "button";
      remove.className = "icon remove";
      remove.dataset.key = key;
      remove.setAttribute("aria-label", `Remove annotation ${key}`);
      remove.textContent = "×";
      item.append(remove);
    }
    return item;
  });
}

/** A table cell; `label` heads it where a phone shows rows as cards. */
export function cell(label, ...content) {
  const td = document.createElement("td");
  td.dataset.label = label;
  td.append(...content);
  return td;
}
