// verify.js FILE: checks the Standard Webhooks signature of each captured
// request in FILE ({"secret": "whsec_...", "requests": [{"name", "headers":
// {name: [values]}, "body": base64}]}) with the official standardwebhooks
// library and with svix's verifier, and prints a JSON array of
// {name, standardwebhooks: {ok, error}, svix: {ok, error}}.
"use strict";
const fs = require("fs");
const standardwebhooks = require("standardwebhooks");
const svix = require("svix");

const input = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const sw = new standardwebhooks.Webhook(input.secret);
const sv = new svix.Webhook(input.secret);

function verdict(fn, verificationError) {
  try {
    fn();
    return { ok: true };
  } catch (err) {
    // svix's verifier parses the payload as JSON once the signature
    // matched: a SyntaxError there means the signature verified and the
    // body (form, XML or text) is not JSON.
    if (err instanceof SyntaxError && !(err instanceof verificationError)) {
      return { ok: true };
    }
    return { ok: false, error: String(err && err.message ? err.message : err) };
  }
}

const results = input.requests.map((r) => {
  // Receivers see each header once, as Node's http module joins them.
  const headers = {};
  for (const [k, v] of Object.entries(r.headers || {})) {
    headers[k.toLowerCase()] = v.join(", ");
  }
  const body = Buffer.from(r.body || "", "base64");
  return {
    name: r.name,
    standardwebhooks: verdict(
      () => sw.verify(body, headers, { jsonParse: false }),
      standardwebhooks.WebhookVerificationError,
    ),
    svix: verdict(() => sv.verify(body, headers), svix.WebhookVerificationError),
  };
});
process.stdout.write(JSON.stringify(results));
