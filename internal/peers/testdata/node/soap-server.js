// soap-server.js: a node-soap service for rowhook's interop tests. It
// listens on a free loopback port, prints {"listening": "http://127.0.0.1:PORT"},
// then one {"call": {...}} line per request it handled, with the input as
// node-soap parsed it. SyncAccount answers by the account name:
//   "boom…"     the handler throws an Error: node-soap's own Server fault
//               (Code/Reason, SOAP 1.2 style, in either envelope)
//   "reject12…" a Sender fault written SOAP 1.2 style (Code/Reason)
//   "reject11…" a Client fault written SOAP 1.1 style (faultcode/faultstring)
//   otherwise   accountRef, a note with XML special characters and a summary
//               computed from the nested and repeated input.
"use strict";
const fs = require("fs");
const http = require("http");
const path = require("path");
const soap = require("soap");

const template = fs.readFileSync(path.join(__dirname, "accounts.wsdl"), "utf8");

function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

function list(v) {
  if (v === undefined || v === null) return [];
  return Array.isArray(v) ? v : [v];
}

function service(pathname) {
  return {
    AccountsService: {
      [pathname === "/accounts" ? "AccountsPort11" : "AccountsPort12"]: {
        SyncAccount(args) {
          const account = (args && args.account) || {};
          const name = String(account.name || "");
          let outcome = "ok";
          if (name.startsWith("boom")) outcome = "server-fault";
          else if (name.startsWith("reject12")) outcome = "sender-fault";
          else if (name.startsWith("reject11")) outcome = "client-fault";
          emit({ call: { path: pathname, operation: "SyncAccount", args, outcome } });
          switch (outcome) {
            case "server-fault":
              throw new Error("ledger locked for " + name);
            case "sender-fault":
              throw {
                Fault: {
                  Code: { Value: "soap:Sender", Subcode: { Value: "InvalidAccount" } },
                  Reason: { Text: "account " + name + " rejected: owner email is not allowed" },
                  statusCode: 500,
                },
              };
            case "client-fault":
              throw {
                Fault: {
                  faultcode: "soap:Client",
                  faultstring: "account " + name + " rejected: tag list is invalid",
                  statusCode: 500,
                },
              };
          }
          const lines = list(account.line);
          let total = 0;
          for (const l of lines) total += Number(l.quantity) * Number(l.price);
          const owner = account.owner || {};
          const city = (owner.address && owner.address.city) || "";
          return {
            accountRef: "ACC-" + (pathname === "/accounts12" ? "12-" : "11-") + name.length + "-" + lines.length,
            note: `Tom & Jerry <"${name}"> 'since 1940' ${owner.email} @ ${city} [${list(account.tag).join("|")}]`,
            summary: {
              lineCount: lines.length,
              total: total.toFixed(2),
              sku: lines.map((l) => l.sku),
            },
          };
        },
      },
    },
  };
}

const server = http.createServer((req, res) => {
  res.statusCode = 404;
  res.end();
});
server.listen(0, "127.0.0.1", () => {
  const base = "http://127.0.0.1:" + server.address().port;
  const xml = template.replace(/BASE_URL/g, base);
  // Print the address once both services have read the WSDL.
  let pending = 2;
  const ready = (err) => {
    if (err) {
      console.error(err);
      process.exit(1);
    }
    if (--pending === 0) emit({ listening: base });
  };
  soap.listen(server, { path: "/accounts", services: service("/accounts"), xml, callback: ready });
  soap.listen(server, {
    path: "/accounts12",
    services: service("/accounts12"),
    xml,
    forceSoap12Headers: true,
    callback: ready,
  });
});
process.on("SIGTERM", () => process.exit(0));
