// What the browser tests share: the settings from the environment, an overall deadline, named
// steps that count and report, assertions, bounded polling, and Chromium's launch.

import path from "node:path";
import { chromium } from "playwright-core";

export const BASE = process.env.FAWKES_URL;
export const SHOTS = process.env.SCREENSHOT_DIR || path.resolve("../../target/browser");
export const STEP_TIMEOUT_MS = 10_000;

if (!BASE) {
  console.error("FAWKES_URL is not set (e.g. http://127.0.0.1:4000)");
  process.exit(2);
}

/// A hung browser must not hang the run.
export function deadline(ms, what) {
  setTimeout(() => {
    console.error(`${what}: no result after ${ms / 1000}s`);
    process.exit(1);
  }, ms).unref();
}

export const results = { passed: 0, failed: 0 };

export async function step(name, fn) {
  const started = Date.now();
  try {
    await fn();
    results.passed += 1;
    console.log(`ok - ${name} (${Date.now() - started} ms)`);
  } catch (err) {
    results.failed += 1;
    console.log(`not ok - ${name}\n  ${String(err && err.stack ? err.stack : err).replace(/\n/g, "\n  ")}`);
    throw err;
  }
}

export function assert(condition, message) {
  if (!condition) throw new Error(`assertion failed: ${message}`);
}

// Polls `probe` until it returns a truthy value, or fails after `ms`.
export async function eventually(what, probe, ms = STEP_TIMEOUT_MS, every = 100) {
  const deadline = Date.now() + ms;
  let last;
  while (Date.now() < deadline) {
    last = await probe();
    if (last) return last;
    await new Promise((resolve) => setTimeout(resolve, every));
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what} (last: ${JSON.stringify(last)})`);
}

export function launch() {
  return chromium.launch({
    executablePath: "/usr/bin/chromium",
    // Playwright gives every launch a fresh, temporary user-data-dir of its own.
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
    timeout: 60_000,
  });
}
