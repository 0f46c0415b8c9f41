// A foreign client with an integrator's read-only credential, as an integrator would write
// it with the official NATS packages: list every qcdc.v1 stream, read all its history with
// an ordered consumer, check every message, then try to publish and to delete (both must
// be refused). Prints one JSON report on stdout; exits 1 when a check fails.
//
// Environment: QCDC_NATS_URL, QCDC_NATS_USER, QCDC_NATS_PASSWORD (the generated env file),
// QCDC_NATS_INBOX_PREFIX for a subtree credential.
import { connect } from "@nats-io/transport-node";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const RFC3339_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;
const EVENT_SUBJECT = /^qcdc\.v1\.([a-z_]+)\.([a-z_]+)\.([A-Za-z0-9_-]{1,32}(\.[A-Za-z0-9_-]{1,32}){0,11})$/;
const DEAD_LETTER_SUBJECT = /^qcdc\.v1\.deadletter\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

const problems = [];
const fail = (what) => problems.push(what);

/** The checks on one event message; returns its ce-id. */
function checkEvent(msg) {
  const where = `${msg.subject} #${msg.seq}`;
  const match = EVENT_SUBJECT.exec(msg.subject);
  if (!match) {
    fail(`${where}: subject is not qcdc.v1.<aggregate>.<event>.<unit path>`);
    return null;
  }
  const [, aggregate, event, path] = match;
  const h = (name) => msg.headers?.get(name) ?? "";
  const id = h("ce-id");
  const expected = {
    "ce-specversion": "1.0",
    "ce-type": `qcdc.${aggregate}.${event}.v1`,
    "ce-subject": path,
    "content-type": "application/json",
    "Nats-Msg-Id": id,
  };
  for (const [name, value] of Object.entries(expected)) {
    if (h(name) !== value) fail(`${where}: ${name} is ${JSON.stringify(h(name))}, not ${value}`);
  }
  if (!UUID.test(id)) fail(`${where}: ce-id ${JSON.stringify(id)} is not a UUID`);
  if (!/^\/qcdc\/[a-z]+$/.test(h("ce-source"))) fail(`${where}: ce-source ${h("ce-source")}`);
  if (!RFC3339_UTC.test(h("ce-time"))) fail(`${where}: ce-time ${h("ce-time")} is not RFC 3339 UTC`);
  let body;
  try {
    body = msg.json();
  } catch (err) {
    fail(`${where}: body is not JSON (${err.message})`);
    return id;
  }
  if (!Array.isArray(body.unit_path) || body.unit_path.join(".") !== path) {
    fail(`${where}: body unit_path ${JSON.stringify(body.unit_path)} does not end the subject`);
  }
  return id;
}

/** A dead letter keeps the original ce-* headers and says why; its Nats-Msg-Id is its own. */
function checkDeadLetter(msg) {
  const where = `${msg.subject} #${msg.seq}`;
  if (!DEAD_LETTER_SUBJECT.test(msg.subject)) fail(`${where}: not a dead-letter subject`);
  if (!msg.headers?.get("qcdc-deadletter-reason")) fail(`${where}: no qcdc-deadletter-reason`);
  if (!(msg.headers?.get("Nats-Msg-Id") ?? "").startsWith("dl-")) fail(`${where}: Nats-Msg-Id`);
  return msg.headers?.get("ce-id") || null;
}

async function readAll(js, stream, total) {
  // An ordered consumer: no name to choose, no acks, recreated by the client on a gap.
  const consumer = await js.consumers.get(stream);
  const ids = [];
  if (total === 0) return ids;
  const messages = await consumer.consume();
  for await (const msg of messages) {
    const dead = stream === "QCDC_DEADLETTER";
    const id = dead ? checkDeadLetter(msg) : checkEvent(msg);
    if (id) ids.push(id);
    if (msg.info.pending === 0) break;
  }
  await messages.close();
  return ids;
}

/** Resolves to "refused: …" when the server refuses the operation, or a problem. */
async function refused(what, operation) {
  try {
    await operation();
    fail(`${what} was allowed`);
    return "allowed";
  } catch (err) {
    return `refused: ${err.name}: ${err.message}`;
  }
}

async function main() {
  const nc = await connect({
    servers: process.env.QCDC_NATS_URL,
    user: process.env.QCDC_NATS_USER,
    pass: process.env.QCDC_NATS_PASSWORD,
    inboxPrefix: process.env.QCDC_NATS_INBOX_PREFIX || undefined,
    reconnect: false,
  });
  const jsm = await jetstreamManager(nc);
  const js = jetstream(nc, { timeout: 3000 });
  const report = { streams: {}, ids: [], publish: null, deletes: {} };

  for await (const info of jsm.streams.list()) {
    if (!info.config.subjects.every((s) => s.startsWith("qcdc.v1."))) continue;
    const name = info.config.name;
    const ids = await readAll(js, name, info.state.messages);
    report.streams[name] = { subjects: info.config.subjects, messages: ids.length };
    report.ids.push(...ids);
  }
  report.publish = await refused("publishing an event", () =>
    js.publish("qcdc.v1.unit.registered.T89", JSON.stringify({ unit_path: ["T89"] }), {
      msgID: "00000000-0000-4000-8000-000000000000",
    }),
  );
  const first = Object.keys(report.streams)[0];
  report.deletes.stream = await refused("deleting a stream", () => jsm.streams.delete(first));
  report.deletes.purge = await refused("purging a stream", () => jsm.streams.purge(first));
  report.deletes.message = await refused("deleting a message", () =>
    jsm.streams.deleteMessage(first, 1),
  );
  report.problems = problems;
  await nc.close();
  process.stdout.write(JSON.stringify(report) + "\n");
  process.exit(problems.length ? 1 : 0);
}

main().catch((err) => {
  process.stdout.write(JSON.stringify({ crashed: `${err.name}: ${err.message}`, problems }) + "\n");
  process.exit(2);
});
