// A headless Debian chromium, driven by the Rust tests one JSON command per line on
// stdin; each gets one JSON line back on stdout: {"ok": result} or {"error": text}.
// It knows nothing about stepgate: the tests say what to open, fill and read.
//
//   node driver.mjs <profile-dir> <screenshot-dir>

import { chromium } from "playwright-core";
import { createInterface } from "node:readline";

const [profile, shots] = process.argv.slice(2);
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";

const context = await chromium.launchPersistentContext(profile, {
  executablePath,
  headless: true,
  viewport: { width: 1280, height: 800 },
  args: [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
  ],
});
const page = context.pages()[0] || (await context.newPage());
page.setDefaultTimeout(15000);
let cdp = null;
const responses = [];
page.on("response", (r) => responses.push({ url: r.url(), status: r.status(), location: r.headers()["location"] || null }));

const ops = {
  async goto({ url }) {
    const r = await page.goto(url);
    return { status: r ? r.status() : null, url: page.url() };
  },
  async url() { return page.url(); },
  async fill({ selector, value }) { await page.fill(selector, value); return null; },
  async click({ selector }) { await page.click(selector); return null; },
  async select({ selector, value }) { await page.selectOption(selector, value); return null; },
  async press({ key }) { await page.keyboard.press(key); return null; },
  async type({ text }) { await page.keyboard.type(text); return null; },
  async text({ selector }) { return (await page.textContent(selector)) ?? null; },
  async count({ selector }) { return await page.locator(selector).count(); },
  async attribute({ selector, name }) { return await page.getAttribute(selector, name); },
  async waitFor({ selector }) { await page.waitForSelector(selector); return null; },
  async waitForUrl({ prefix }) {
    await page.waitForURL((u) => u.toString().startsWith(prefix));
    return page.url();
  },
  // What has keyboard focus: its id, name and tag.
  async focused() {
    return await page.evaluate(() => {
      const e = document.activeElement;
      return e ? { id: e.id || null, name: e.getAttribute("name"), tag: e.tagName.toLowerCase(), text: (e.textContent || "").trim() } : null;
    });
  },
  async content() { return await page.content(); },
  // Bytes the current page took over the network: the document and what it loaded.
  async weight() {
    return await page.evaluate(() => performance.getEntries()
      .filter((e) => e.entryType === "navigation" || e.entryType === "resource")
      .reduce((sum, e) => sum + (e.transferSize || e.encodedBodySize || 0), 0));
  },
  // Every response since the last call: url, status, Location.
  async responses() { return responses.splice(0); },
  async cookies() { return await context.cookies(); },
  // A screenshot at phone (360 px) and desktop width: <name>-phone.png, <name>-desktop.png.
  async screenshot({ name }) {
    const files = [];
    for (const [kind, width, height] of [["phone", 360, 780], ["desktop", 1280, 800]]) {
      await page.setViewportSize({ width, height });
      const path = `${shots}/${name}-${kind}.png`;
      await page.screenshot({ path, fullPage: true });
      files.push(path);
    }
    await page.setViewportSize({ width: 1280, height: 800 });
    return files;
  },
  // Chromium's virtual authenticator (CTAP2, internal, user verification): a passkey.
  async addVirtualAuthenticator() {
    cdp = cdp || (await context.newCDPSession(page));
    await cdp.send("WebAuthn.enable");
    const { authenticatorId } = await cdp.send("WebAuthn.addVirtualAuthenticator", {
      options: {
        protocol: "ctap2", transport: "internal", hasResidentKey: true,
        hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true,
      },
    });
    return authenticatorId;
  },
  async credentials({ authenticatorId }) {
    const { credentials } = await cdp.send("WebAuthn.getCredentials", { authenticatorId });
    return credentials.map((c) => ({ credentialId: c.credentialId, signCount: c.signCount, rpId: c.rpId }));
  },
  // Sends a request from the page (same cookies, same origin rules) and reports it.
  async fetch({ url, method, body, contentType }) {
    return await page.evaluate(async ({ url, method, body, contentType }) => {
      const r = await fetch(url, { method, body, headers: contentType ? { "Content-Type": contentType } : {}, redirect: "manual", credentials: "include" });
      return { status: r.status, type: r.type, text: await r.text() };
    }, { url, method, body, contentType });
  },
  async close() { await context.close(); return null; },
};

const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  if (!line.trim()) continue;
  let reply;
  try {
    const command = JSON.parse(line);
    const op = ops[command.op];
    if (!op) throw new Error(`no op ${command.op}`);
    reply = { ok: (await op(command)) ?? null };
    if (command.op === "close") {
      process.stdout.write(JSON.stringify(reply) + "\n");
      break;
    }
  } catch (e) {
    reply = { error: String(e && e.message ? e.message : e) };
  }
  process.stdout.write(JSON.stringify(reply) + "\n");
}
process.exit(0);
