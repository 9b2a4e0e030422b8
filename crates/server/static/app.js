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

  // Each wizard step puts the operator where the step's work is: on a field the server refused
  // (aria-invalid) or chose (autofocus), else on its first field, or, on a step that has none
  // (progress, printing information), on its heading, so that a screen reader starts reading at
  // the step and not at the top of the page.
  const wizard = document.querySelector("section.wizard");
  if (wizard) {
    const field = wizard.querySelector("[aria-invalid=true], [autofocus]") ?? wizard.querySelector(
      "form input:not([type=hidden]):not([disabled]), form select:not([disabled]), form textarea:not([disabled])");
    const heading = wizard.querySelector("h2") ?? wizard.querySelector("h1");
    if (field) {
      field.focus();
    } else if (heading) {
      heading.setAttribute("tabindex", "-1");
      heading.focus();
    }
  }

  // A table or a preformatted text wider than a small screen scrolls inside itself (app.css); it
  // takes keyboard focus then, so that it can be scrolled without a mouse.
  const scrollable = () => {
    document.querySelectorAll("table.list, pre").forEach((table) => {
      if (table.scrollWidth > table.clientWidth + 1) {
        table.setAttribute("tabindex", "0");
      } else if (table.getAttribute("tabindex") === "0") {
        table.removeAttribute("tabindex");
      }
    });
  };
  scrollable();
  window.addEventListener("resize", scrollable);

  // The progress bar follows the job until it leaves the Issuing/Printing steps.
  const job = document.getElementById("job");
  if (job && (job.dataset.step === "issuing" || job.dataset.step === "printing")) {
    const bar = document.getElementById("progress");
    // The message is a live region (role="status"): it is written only when it changes, so a
    // screen reader announces each phase once; the percentage beside it is silent, and the bar
    // itself (a <progress>) carries the value for whoever asks.
    const message = document.getElementById("progress-message");
    const percent = document.getElementById("progress-percent");
    const poll = async () => {
      try {
        const res = await fetch(`/api/v1/jobs/${job.dataset.job}`, { credentials: "same-origin" });
        if (res.ok) {
          const j = await res.json();
          bar.value = j.progress;
          if (message.textContent !== j.message) message.textContent = j.message;
          if (percent) percent.textContent = `(${j.progress}%)`;
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
