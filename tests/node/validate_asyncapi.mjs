// Validates an AsyncAPI document with the AsyncAPI project's own parser (@asyncapi/parser)
// and prints what the test needs as JSON: the diagnostics (severity 0 = error, 1 = warning)
// and, when valid, what the parsed document holds.
//
//   node validate_asyncapi.mjs ../../docs/asyncapi.yaml
import { readFileSync } from "node:fs";
import { Parser } from "@asyncapi/parser";

const path = process.argv[2];
const parser = new Parser();
const { document, diagnostics } = await parser.parse(readFileSync(path, "utf8"), { source: path });
const result = {
  errors: diagnostics.filter((d) => d.severity === 0).map((d) => `${d.path.join(".")}: ${d.message}`),
  warnings: diagnostics.filter((d) => d.severity === 1).map((d) => `${d.path.join(".")}: ${d.message}`),
};
if (document) {
  result.version = document.version();
  result.channels = Object.fromEntries(
    document.channels().all().map((c) => [c.id(), c.address()]),
  );
  result.operations = document.operations().all().map((o) => [o.id(), o.action()]);
  result.messages = Object.fromEntries(
    document.messages().all().map((m) => [
      m.name() ?? m.id(),
      {
        payloadProperties: Object.keys(m.payload()?.properties() ?? {}),
        headers: m.hasHeaders(),
      },
    ]),
  );
}
process.stdout.write(JSON.stringify(result) + "\n");
process.exit(result.errors.length ? 1 : 0);
