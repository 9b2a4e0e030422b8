// The PIN fields of the Device Issuance policy step: shows the chosen policy's PIN rules and
// checks the PIN as the operator types, with the sentence next to the field it concerns. It
// mirrors the server's rules (tessera-core `pin_rules`), which stay the authority: a PIN this
// script lets through is checked again, and a refusal comes back next to the same field.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const form = document.querySelector("form[data-pin-form]");
  const pin = form && form.querySelector("#pin");
  if (!pin) return;
  const policy = form.querySelector("#policy");
  const confirm = form.querySelector("#pin-confirm");
  const sets = Array.from(form.querySelectorAll(".pin-rule-set"));
  const errorOf = (input) => document.getElementById(input.id + "-error");
  // This script gives every message itself, next to the field, instead of the browser's bubble.
  form.noValidate = true;

  const rules = () => {
    const set = sets.find((s) => s.dataset.policy === policy.value) || sets[0];
    const d = set ? set.dataset : {};
    return {
      min: Number(d.min || 6),
      max: Number(d.max || 8),
      weak: d.weak === "true",
      refused: (d.refused || "").split(" ").filter(Boolean),
    };
  };

  // The same rules, order and sentences as `pin_rules::check` on the server.
  const refusal = (value) => {
    const r = rules();
    const digits = r.min === r.max ? `${r.min} digits` : `${r.min} to ${r.max} digits`;
    const length = { code: "PIN0001", text: `The PIN must have ${digits}.` };
    const weak = (why) => ({ code: "PIN0004", text: `The PIN is too easy to guess: ${why}.` });
    if (value === "") return length;
    if (!/^[0-9]+$/.test(value)) {
      return { code: "PIN0002", text: "The PIN must contain digits only (0-9), no letters, spaces or signs." };
    }
    if (value.length < r.min || value.length > r.max) return length;
    if (value === "123456") return { code: "PIN0003", text: "The PIN must not be the factory PIN 123456." };
    if (r.weak) {
      for (let n = 1; n <= value.length / 2; n++) {
        if (value.length % n === 0 && value === value.slice(0, n).repeat(value.length / n)) {
          return weak("it repeats one digit or a short group of digits");
        }
      }
      const steps = [];
      for (let i = 1; i < value.length; i++) steps.push((10 + Number(value[i]) - Number(value[i - 1])) % 10);
      if (steps.every((s) => s === 1) || steps.every((s) => s === 9)) {
        return weak("its digits run up or down in order (such as 234567)");
      }
    }
    if (r.refused.includes(value)) return weak("it is on the list of common PINs");
    return null;
  };

  const show = (input, problem) => {
    const out = errorOf(input);
    if (problem) {
      out.textContent = problem.text + " ";
      const code = document.createElement("code");
      code.textContent = problem.code;
      out.appendChild(code);
      input.setAttribute("aria-invalid", "true");
    } else {
      out.textContent = "";
      input.removeAttribute("aria-invalid");
    }
  };

  const mismatch = () =>
    confirm && confirm.value !== pin.value
      ? { code: "PIN0005", text: "The two PINs differ: type the same PIN in both fields." }
      : null;

  // While typing, a sentence appears once more keys cannot fix it (a letter, too many digits)
  // or the PIN is long enough and still refused (the factory PIN, a weak one); "too short" waits
  // until the field is left. Once a field was left, its sentence follows every keystroke.
  const touched = new Set();
  const checkPin = (typing) => {
    const problem = refusal(pin.value);
    const r = rules();
    const certain =
      problem &&
      (problem.code === "PIN0002" ||
        pin.value.length > r.max ||
        (pin.value.length >= r.min && problem.code !== "PIN0001"));
    if (!typing || touched.has(pin) || certain || !problem) show(pin, problem);
    return problem;
  };
  const checkConfirm = (typing) => {
    if (!confirm) return null;
    const problem = mismatch();
    const certain = problem && confirm.value.length >= pin.value.length;
    if (!typing || touched.has(confirm) || certain || !problem) show(confirm, problem);
    return problem;
  };

  pin.addEventListener("input", () => {
    checkPin(true);
    if (confirm && confirm.value) checkConfirm(true);
  });
  pin.addEventListener("change", () => {
    touched.add(pin);
    checkPin(false);
  });
  if (confirm) {
    confirm.addEventListener("input", () => checkConfirm(true));
    confirm.addEventListener("change", () => {
      touched.add(confirm);
      checkConfirm(false);
    });
  }
  policy.addEventListener("change", () => {
    const chosen = policy.value;
    sets.forEach((s) => {
      s.hidden = s.dataset.policy !== chosen;
    });
    if (pin.value) checkPin(false);
  });

  // A PIN the server refused: its field takes the focus, the sentence is already beside it.
  const refused = form.querySelector("input[aria-invalid=true]");
  if (refused) {
    refused.focus();
    // The refusal answered the form's POST: the address becomes the step's own again, so a
    // reload shows the step instead of sending the form once more.
    if (location.pathname.endsWith("/policy")) {
      history.replaceState(null, "", location.pathname.slice(0, -"/policy".length));
    }
  }

  form.addEventListener("submit", (event) => {
    touched.add(pin);
    const first = checkPin(false) ? pin : null;
    let second = null;
    if (confirm && !first) {
      touched.add(confirm);
      second = checkConfirm(false) ? confirm : null;
    }
    const wrong = first || second;
    if (wrong) {
      event.preventDefault();
      wrong.focus();
    }
  });
});
