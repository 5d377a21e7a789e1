// Starts Swagger UI on /api/docs. A file rather than an inline <script>, so that the
// page's Content-Security-Policy can forbid inline script.
"use strict";

window.addEventListener("load", function () {
  var container = document.getElementById("swagger-ui-container");
  var config = JSON.parse(container.dataset.config || "{}");
  config.url = container.dataset.specUrl;
  config.dom_id = "#swagger-ui-container";
  // Never send the document to the public validator (the page works offline).
  config.validatorUrl = null;
  window.ui = SwaggerUIBundle(config);
});
