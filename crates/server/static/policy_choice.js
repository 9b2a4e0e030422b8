// The wizard's policy step: the description shown is the chosen policy's. The server renders
// every policy's description and shows the proposed one; this script follows the list (and a
// choice the browser restored on Back). A static file: the CSP allows no inline script.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const select = document.getElementById("policy");
  const summaries = document.querySelectorAll("[data-policy-summary]");
  if (!select || summaries.length === 0) return;
  const show = () => {
    summaries.forEach((summary) => {
      summary.hidden = summary.dataset.policySummary !== select.value;
    });
  };
  select.addEventListener("change", show);
  show();
});
