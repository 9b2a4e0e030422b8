// What every browser test starts with: a `tessera demo` of its own on a free loopback port, in a
// data folder of its own (TESSERA_BIN, TESSERA_E2E_DIR), and the machine's headless Chromium
// (CHROMIUM, /usr/bin/chromium by default) for playwright-core.
import { chromium } from "playwright-core";
import { spawn } from "node:child_process";
import { setTimeout as sleep } from "node:timers/promises";
import assert from "node:assert/strict";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));

/**
 * Starts the demo; `folder` names its data folder under artifacts/ when TESSERA_E2E_DIR is not
 * set. Returns `{ base, log, stop, ready }`: `log` is the server's standard error so far,
 * `ready()` waits for the portal and answers the administrator's first password.
 */
export function startDemo(folder) {
  const bin = process.env.TESSERA_BIN ?? path.join(here, "../../target/debug/tessera");
  const dataDir = process.env.TESSERA_E2E_DIR ?? path.join(here, "artifacts", folder);
  const port = 20000 + Math.floor(Math.random() * 20000);
  const base = `http://127.0.0.1:${port}`;
  const server = spawn(bin, ["demo", "--data", dataDir, "--listen", `127.0.0.1:${port}`], {
    stdio: ["ignore", "inherit", "pipe"],
  });
  const demo = {
    base,
    log: "",
    stop() {
      try { server.kill("SIGTERM"); } catch (_) { /* already gone */ }
    },
    async ready() {
      for (let i = 0; i < 300; i++) {
        try {
          const r = await fetch(`${base}/healthz`);
          if (r.ok) {
            const password = /Password: (\S+)/.exec(demo.log)?.[1];
            assert.ok(password, `the first start prints the admin password:\n${demo.log}`);
            return password;
          }
        } catch (_) { /* not up yet */ }
        await sleep(100);
      }
      throw new Error(`tessera demo did not start:\n${demo.log}`);
    },
  };
  server.stderr.on("data", (d) => { demo.log += d.toString(); });
  process.on("exit", demo.stop);
  return demo;
}

/** The machine's Chromium, headless. */
export function launchChromium() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--no-first-run"],
  });
}
