// The help desk in a real browser (headless Chromium, playwright-core), against a running
// `tessera serve` whose station reads a virtual card through pcscd (scripts/interop.sh starts both
// and checks the card with yubico-piv-tool afterwards). An administrator creates a Help Desk
// operator scoped to the Security group and requires an authenticator for the role; the operator
// signs in with the one-time password, chooses a password, enrols TOTP (codes from oathtool),
// finds Jane Doe, unlocks her blocked PIN at the reader, and cannot see a user of another group.
//
// Environment: TESSERA_BASE (the portal), TESSERA_ADMIN_PASSWORD, TESSERA_READER (the reader that
// holds Jane's card), TESSERA_NEW_PIN.
import { chromium } from "playwright-core";
import { execFileSync } from "node:child_process";
import { mkdirSync, copyFileSync } from "node:fs";
import assert from "node:assert/strict";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const artifacts = path.join(here, "artifacts");
mkdirSync(artifacts, { recursive: true });
const env = (name) => {
  const value = process.env[name];
  assert.ok(value, `${name} is set`);
  return value;
};
const base = env("TESSERA_BASE");
const adminPassword = env("TESSERA_ADMIN_PASSWORD");
const reader = env("TESSERA_READER");
const newPin = env("TESSERA_NEW_PIN");
const HANA_PASSWORD = "violet kettle harbour";

let shot = 0;
async function snap(page, name) {
  shot += 1;
  const file = path.join(artifacts, `helpdesk-${String(shot).padStart(2, "0")}-${name}.png`);
  await page.screenshot({ path: file, fullPage: true, timeout: 10000 });
  return file;
}

// The code an authenticator app shows at `at` (seconds), from oathtool, not from Tessera.
const totp = (secret, at) =>
  execFileSync("oathtool", ["--totp", "-b", "--now", `@${at}`, secret]).toString().trim();

async function signIn(page, operator, password, code) {
  await page.goto(`${base}/login`);
  await page.fill("input[name=operator]", operator);
  await page.fill("input[name=password]", password);
  if (code) await page.fill("#code", code);
  await page.click("button[type=submit]");
}

async function signOut(page) {
  await page.click("nav form[action='/logout'] button");
  await page.waitForURL(/\/login$/);
}

async function run() {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--no-first-run"],
  });
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  // The 401 of a sign-in that still needs its code and the 404 of a user out of scope are
  // answers this test asks for; any other console error is a defect.
  page.on("console", (m) => {
    if (m.type() === "error" && !/status of (401|404)/.test(m.text())) errors.push(m.text());
  });

  // --- the administrator creates Hana and requires TOTP of the Help Desk role
  await signIn(page, "admin", adminPassword);
  await page.waitForURL(/\/users$/);
  // A user outside the Security group, as the administrator (who sees everyone) finds them.
  let outsider;
  for (const href of await page.$$eval("main a[href^='/users/']", (a) => a.map((x) => x.getAttribute("href")))) {
    const r = await page.request.get(`${base}${href}`);
    const groups = /<dt>Groups<\/dt><dd>([^<]*)<\/dd>/.exec(await r.text())?.[1] ?? "";
    if (!groups.split(", ").includes("security")) { outsider = href.slice("/users/".length); break; }
  }
  assert.ok(outsider, "a user outside Security");
  await page.click("nav a[href='/operators']");
  await page.fill("#create-operator input[name=id]", "hana");
  await page.fill("#create-operator input[name=display_name]", "Hana Ito");
  await page.selectOption("#new-operator-role", "help_desk");
  await page.fill("#create-operator input[name=scope]", "security");
  const operators = await snap(page, "operators");
  await page.click("#create-operator button[type=submit]");
  const oneTime = (await page.textContent("#one-time-password code")).trim();
  assert.equal(oneTime.length, 19, "a one-time password is shown once");
  await page.click("nav a[href='/settings']");
  await page.check("input[name=totp_role][value=help_desk]");
  await page.click("#settings-form button[type=submit]");
  await page.waitForURL(/saved=1/);
  await signOut(page);

  // --- Hana: one-time password, her own password, then the authenticator
  await signIn(page, "hana", oneTime);
  await page.waitForURL(/\/account\/password$/);
  await page.fill("input[name=current]", oneTime);
  await page.fill("input[name=new]", HANA_PASSWORD);
  await page.fill("input[name=confirm]", HANA_PASSWORD);
  await page.click("#change-password button[type=submit]");
  await page.waitForURL(/\/account\/totp$/);
  await page.click("#begin-totp button[type=submit]");
  await page.waitForSelector("#totp-qr svg");
  const secret = (await page.textContent("#totp-secret")).trim();
  const enrolment = await snap(page, "totp-enrolment");
  const enrolledAt = Math.floor(Date.now() / 1000);
  await page.fill("#confirm-totp input[name=code]", totp(secret, enrolledAt));
  await page.click("#confirm-totp button[type=submit]");
  const codes = await page.$$eval("#recovery-codes code", (c) => c.map((x) => x.textContent));
  assert.equal(codes.length, 10, "ten recovery codes");
  await page.click("text=I have kept them");
  await page.waitForURL(/\/users$/);
  await signOut(page);

  // --- Hana signs in with password and the next code (the one used to enrol is spent)
  await signIn(page, "hana", HANA_PASSWORD);
  assert.match(await page.textContent(".alert"), /6-digit code/);
  await signIn(page, "hana", HANA_PASSWORD, totp(secret, enrolledAt + 30));
  await page.waitForURL(/\/users$/);
  // The menu has no administration for her.
  assert.equal(await page.$("nav a[href='/operators']"), null);
  assert.equal(await page.$("nav a[href='/settings']"), null);

  // --- out of scope: not listed, not found by address
  await page.fill("input[name=q]", "");
  await page.click("form.search button");
  const listed = await page.$$eval("main a[href^='/users/']", (a) => a.map((x) => x.getAttribute("href")));
  assert.ok(listed.includes("/users/jdoe"), "Jane Doe (Security) is listed");
  assert.ok(!listed.includes(`/users/${outsider}`), `${outsider} is not listed`);
  const res = await page.goto(`${base}/users/${outsider}`);
  assert.equal(res.status(), 404, "a user out of scope does not exist for her");

  // --- Jane's PIN is blocked: Hana unlocks it at the reader
  await page.goto(`${base}/users/jdoe`);
  await page.click(".device[data-state=active] a[href$='/unlock']");
  await page.waitForSelector("#unlock-form");
  await page.selectOption("#reader", reader);
  await page.fill("#unlock-form [name=reason]", "Jane forgot her PIN and blocked it (ticket 4711)");
  await page.fill("#unlock-form [name=pin]", newPin);
  await page.fill("#unlock-form [name=pin_confirm]", newPin);
  const unlock = await snap(page, "unlock-pin");
  await page.click("#unlock-form button[type=submit]");
  await page.waitForSelector("#outcome", { timeout: 60000 });
  assert.match(await page.textContent("#outcome"), /3 tries left/);
  assert.ok(!(await page.content()).includes(newPin), "the new PIN is not shown back");
  const done = await snap(page, "unlock-done");

  assert.deepEqual(errors, [], "no script errors or CSP violations");
  await browser.close();

  if (process.env.TESSERA_DOCS_SCREENSHOTS) {
    const docs = path.join(here, "../../docs/images");
    mkdirSync(docs, { recursive: true });
    copyFileSync(operators, path.join(docs, "operators.png"));
    copyFileSync(enrolment, path.join(docs, "totp-enrolment.png"));
    copyFileSync(unlock, path.join(docs, "unlock-pin.png"));
    copyFileSync(done, path.join(docs, "unlock-done.png"));
  }
  console.log("help desk e2e: operator created, TOTP enrolled and used, scope held, PIN unlocked");
}

run().catch((e) => {
  console.error(e);
  process.exit(1);
});
