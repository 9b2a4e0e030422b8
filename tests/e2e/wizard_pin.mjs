// The initial PIN on the Device Issuance policy step, with the mistakes operators make, in a real
// browser (headless Chromium driven by playwright-core) against `tessera demo`. For each wrong
// PIN (confirmation differs, the factory PIN, repeated digits, a run, 5 digits, letters, a PIN
// the policy refuses) it checks what the operator sees twice: the page's own check while typing
// (the sentence next to the field, Continue held back), and the server's answer when the form is
// sent anyway (as a browser without script would): the same step again (422), the sentence and
// its code next to the field, the policy still chosen, both PIN fields empty. The rules beside the
// field follow the chosen policy. A good PIN then proceeds; an error page's Go back is a link
// that works under the portal's Content-Security-Policy.
import { launchChromium, startDemo } from "./demo.mjs";
import { mkdirSync } from "node:fs";
import assert from "node:assert/strict";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const artifacts = path.join(here, "artifacts");
mkdirSync(artifacts, { recursive: true });
const demo = startDemo("data-pin");
const { base, stop } = demo;
const GOOD = "482916";
// The policy the operator picks: not the first in the list, so "still chosen" means something.
const POLICY = "piv-rsa2048";


const text = (page, sel) => page.$eval(sel, (e) => e.textContent.trim());
const attr = (page, sel, name) => page.$eval(sel, (e, n) => e.getAttribute(n), name);

/** The rules shown beside the PIN field (the visible set). */
const shownRules = (page) =>
  page.$eval("#pin-rules", (r) =>
    Array.from(r.querySelectorAll(".pin-rule-set")).filter((s) => !s.hidden).map((s) => s.textContent).join("|"));

/** Sends the policy form the way a browser without the page's script would. */
async function sendAnyway(page) {
  const [response] = await Promise.all([
    page.waitForNavigation(),
    page.$eval("#policy-form", (f) => f.submit()),
  ]);
  return response;
}

/** One wrong input: the live check, then the server's refusal, as the operator sees them. */
async function refused(page, job, { policy = POLICY, pin, confirm = pin, field, code, says, typing = true }) {
  await page.selectOption("#policy", policy);
  await page.fill("#pin", pin);
  if (await page.$("#pin-confirm")) await page.fill("#pin-confirm", confirm);
  const input = field === "confirm" ? "#pin-confirm" : "#pin";
  const error = field === "confirm" ? "#pin-confirm-error" : "#pin-error";
  if (!typing) await page.focus("#continue"); // leaving the field shows what waited for it
  // As typed: the sentence is next to the field; Continue does not leave the form.
  await page.waitForFunction(([sel, c]) => document.querySelector(sel).textContent.includes(c), [error, code]);
  assert.match(await text(page, error), says, `${pin}: the page says why while typing`);
  assert.equal(await attr(page, input, "aria-invalid"), "true");
  await page.click("#continue");
  assert.ok(page.url().endsWith(`/issue/${job}`), `${pin}: Continue is held back`);
  assert.equal(await page.evaluate(() => document.activeElement.id), input.slice(1), "focus goes to the field");

  // Sent anyway: the server refuses with the same code, on the same step.
  const response = await sendAnyway(page);
  assert.equal(response.status(), 422, `${pin}: refused by the server`);
  assert.ok(page.url().endsWith(`/issue/${job}`), "the address is the step's own (a reload shows the form)");
  assert.equal(await text(page, "h2"), "Configure Device", "still on the policy step");
  assert.ok(!(await page.$(".error-box")), "no error page instead of the form");
  const message = await text(page, error);
  assert.match(message, says, `${pin}: the server says why next to the field`);
  assert.ok(message.includes(code), `${pin}: ${message} has ${code}`);
  assert.equal(await attr(page, input, "aria-invalid"), "true");
  assert.ok((await attr(page, input, "aria-describedby")).includes(error.slice(1)), "the field is described by its error");
  assert.equal(await page.inputValue("#policy"), policy, "the chosen policy is still chosen");
  assert.equal(await page.inputValue("#pin"), "", "the PIN is not sent back");
  if (await page.$("#pin-confirm")) assert.equal(await page.inputValue("#pin-confirm"), "");
  assert.equal(await page.evaluate(() => document.activeElement.id), input.slice(1), "the refused field has focus");
  return response;
}

async function startWizard(page) {
  await page.goto(`${base}/users/jdoe`);
  await page.click("#add-device");
  await page.waitForSelector("#printer-tile");
  if (!(await page.$("#change-reader"))) {
    await page.selectOption("#printer", "Demo Card Printer");
    await page.click("#configure");
    await page.waitForSelector("#change-reader");
  }
  await page.selectOption("#layout", { label: "Corporate Badge" });
  await page.click("#start");
  await page.waitForSelector("#policy");
  return /\/issue\/([^/?#]+)/.exec(page.url())[1];
}

async function run() {
  const password = await demo.ready();

  const browser = await launchChromium();
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  // A CSP violation is a defect; the 4xx answers this test provokes on purpose are not.
  page.on("console", (m) => {
    if (m.type() === "error" && !/status of 4\d\d/.test(m.text())) errors.push(m.text());
  });

  await page.goto(`${base}/login`);
  await page.fill("input[name=operator]", "admin");
  await page.fill("input[name=password]", password);
  await page.click("button[type=submit]");
  await page.waitForURL(/\/users$/);

  // PIV RSA 3072 gets stricter rules: 8 digits, and one PIN of its own refused.
  await page.goto(`${base}/policies/piv-rsa3072`);
  await page.fill("input[name=pin_min]", "8");
  await page.fill("#pin-refused", "48291637");
  assert.ok(await page.isChecked("#pin-refuse-weak"), "weak PINs are refused by default");
  await page.click("#save-policy");
  await page.waitForURL(/\/policies\?saved=1$/);
  // A refused PIN that is no PIN of the policy is caught when the policy is saved.
  await page.goto(`${base}/policies/piv-rsa3072`);
  await page.fill("#pin-refused", "4829");
  await page.click("#save-policy");
  assert.match(await text(page, "#policy-error"), /refused PIN "4829"/);

  // --- Disguised mode (the demo's default): the PIN typed twice.
  const job = await startWizard(page);
  assert.ok(await page.$("#pin-confirm"), "Disguised mode asks for the PIN twice");
  await page.selectOption("#policy", "piv-standard");
  assert.match(await shownRules(page), /6 to 8 digits/);
  assert.match(await shownRules(page), /not the factory PIN 123456/);
  assert.match(await shownRules(page), /no repeated digits/);
  await page.selectOption("#policy", "piv-rsa3072");
  assert.match(await shownRules(page), /8 digits/, "the rules follow the chosen policy");
  assert.doesNotMatch(await shownRules(page), /6 to 8/);
  assert.match(await shownRules(page), /policy's own refused list/);
  assert.equal(await attr(page, "#pin", "pattern"), null, "no browser pattern bubble: the page says why");

  await refused(page, job, { pin: GOOD, confirm: "482917", field: "confirm", code: "PIN0005", says: /two PINs differ/ });
  await refused(page, job, { pin: "123456", field: "pin", code: "PIN0003", says: /factory PIN 123456/ });
  await refused(page, job, { pin: "111111", field: "pin", code: "PIN0004", says: /repeats one digit/ });
  await refused(page, job, { pin: "345678", field: "pin", code: "PIN0004", says: /run up or down/ });
  await refused(page, job, { pin: "48291", field: "pin", code: "PIN0001", says: /6 to 8 digits/, typing: false });
  await refused(page, job, { pin: "48a916", field: "pin", code: "PIN0002", says: /digits only/ });
  await refused(page, job, { policy: "piv-rsa3072", pin: "48291637", field: "pin", code: "PIN0004", says: /list of common PINs/ });
  await refused(page, job, { policy: "piv-rsa3072", pin: GOOD, field: "pin", code: "PIN0001", says: /must have 8 digits/, typing: false });
  await page.screenshot({ path: path.join(artifacts, "pin-refused.png"), fullPage: true });

  // The generic error page: Go back is a plain link to the page the request came from.
  await page.$eval("#policy option:checked", (o) => { o.value = "no-such-policy"; });
  await page.fill("#pin", GOOD);
  await page.fill("#pin-confirm", GOOD);
  await page.click("#continue");
  await page.waitForSelector(".error-box");
  assert.equal(await attr(page, "#error-back", "href"), `/issue/${job}`, "Go back names the form");
  assert.equal(await page.$$eval("meta[name=viewport]", (m) => m.length), 1, "the error page has a viewport");
  await page.click("#error-back");
  await page.waitForSelector("#policy");
  assert.ok(page.url().endsWith(`/issue/${job}`), "Go back returns to the form");

  // A good PIN proceeds to the card.
  await page.selectOption("#policy", "piv-standard");
  await page.fill("#pin", GOOD);
  await page.fill("#pin-confirm", GOOD);
  assert.equal(await text(page, "#pin-error"), "");
  assert.equal(await text(page, "#pin-confirm-error"), "");
  await page.click("#continue");
  await page.waitForSelector("#print-info", { timeout: 120000 });
  await page.click("#continue");
  await page.waitForURL(/\/users\/jdoe/);
  await page.waitForSelector(".device .state-active");

  // --- Displayed mode: one field, the same rules.
  await page.goto(`${base}/settings`);
  await page.selectOption("#pin-mode", "displayed");
  await page.click("#settings-form button[type=submit]");
  const second = await startWizard(page);
  assert.equal(await page.$("#pin-confirm"), null, "Displayed mode asks once");
  await refused(page, second, { pin: "654321", field: "pin", code: "PIN0004", says: /run up or down/ });
  await refused(page, second, { pin: "1234a6", field: "pin", code: "PIN0002", says: /digits only/ });

  assert.deepEqual(errors, [], "no script errors or CSP violations");
  await browser.close();
  console.log("browser PIN entry: 10 wrong PINs refused next to their field, live and by the server; a good one proceeds");
}

run().then(() => { stop(); process.exit(0); }, (e) => {
  console.error(e);
  console.error(demo.log);
  stop();
  process.exit(1);
});
