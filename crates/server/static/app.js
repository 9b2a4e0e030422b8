// Tessera portal: the few behaviours that need script. The portal works without it except the
// live progress bar, which then falls back to a Refresh link.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  // Copy buttons for error codes and operation ids.
  document.querySelectorAll("[data-copy]").forEach((button) => {
    button.addEventListener("click", async () => {
      try {
        await navigator.clipboard.writeText(button.dataset.copy);
        button.textContent = "Copied";
      } catch (_) {
        window.prompt("Copy this text:", button.dataset.copy);
      }
    });
  });

  // Choosing a printer proposes the reader embedded in it.
  const printer = document.getElementById("printer");
  const reader = document.getElementById("reader");
  if (printer && reader) {
    printer.addEventListener("change", () => {
      const embedded = printer.selectedOptions[0]?.dataset.reader;
      if (embedded) reader.value = embedded;
    });
  }

  // An SVG file chosen in a layout form goes into its text area, where it can still be edited.
  document.querySelectorAll("input[data-load-into]").forEach((input) => {
    input.addEventListener("change", async () => {
      const file = input.files[0];
      if (file) document.getElementById(input.dataset.loadInto).value = await file.text();
    });
  });

  // The progress bar follows the job until it leaves the Issuing/Printing steps.
  const job = document.getElementById("job");
  if (job && (job.dataset.step === "issuing" || job.dataset.step === "printing")) {
    const bar = document.getElementById("progress");
    const message = document.getElementById("progress-message");
    const poll = async () => {
      try {
        const res = await fetch(`/api/v1/jobs/${job.dataset.job}`, { credentials: "same-origin" });
        if (res.ok) {
          const j = await res.json();
          bar.value = j.progress;
          message.textContent = `${j.message} (${j.progress}%)`;
          if (j.step !== job.dataset.step && j.step !== "issuing" && j.step !== "printing") {
            window.location.reload();
            return;
          }
        }
      } catch (_) {
        // A dropped request is retried by the next tick.
      }
      setTimeout(poll, 250);
    };
    setTimeout(poll, 100);
  }
});
