// A QCDC bus subscriber for integrators, with the official NATS packages for Node.js
// (@nats-io/transport-node, @nats-io/jetstream); the same behaviour as
// examples/python/subscriber.py:
//
// - durable consumers on a unit subtree (the unit itself and everything below it), which
//   resume where they left off after a restart;
// - --since: a replay of the subtree's history from a point in time (an ordered consumer);
// - every message checked as a QCDC CloudEvent (ce-* headers, JSON body,
//   Nats-Msg-Id = ce-id); one that fails is terminated and reported, never retried;
// - duplicates (a redelivery, a replay, a re-published event) dropped by ce-id, kept in a
//   file of handled ids written before the ack.
//
// Each outcome is printed as one JSON line (handled, duplicate or rejected).
//
//   npm ci
//   set -a; . integrator-egov-h801.env; set +a     # from `qcdc nats config --integrator …`
//   node subscriber.mjs --subtree T89.H801 --durable integrator-egov-h801-inbox
//   node subscriber.mjs --subtree T89.H801 --since 2026-06-01T00:00:00Z
//
// Environment: QCDC_NATS_URL (default nats://127.0.0.1:4222), QCDC_NATS_USER,
// QCDC_NATS_PASSWORD, QCDC_NATS_INBOX_PREFIX (required by subtree credentials),
// QCDC_SUBTREE (default for --subtree).
import { appendFileSync, existsSync, readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { connect } from "@nats-io/transport-node";
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager } from "@nats-io/jetstream";

const EVENT_STREAMS = ["QCDC_PLANS", "QCDC_REPORTS", "QCDC_NOTIFY"];
const SUBJECT =
  /^qcdc\.v1\.([a-z_]+)\.([a-z_]+)\.([A-Za-z0-9_-]{1,32}(?:\.[A-Za-z0-9_-]{1,32}){0,11})$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const BATCH = 50;

class Rejected extends Error {}

/** The CloudEvent's attributes and data, or Rejected naming what is wrong. */
export function check(msg) {
  const match = SUBJECT.exec(msg.subject);
  if (!match) throw new Rejected("subject is not qcdc.v1.<aggregate>.<event>.<unit path>");
  const [, aggregate, event, path] = match;
  const header = (name) => msg.headers?.get(name) ?? "";
  const id = header("ce-id");
  const expected = {
    "ce-specversion": "1.0",
    "ce-type": `qcdc.${aggregate}.${event}.v1`,
    "ce-subject": path,
    "content-type": "application/json",
    "Nats-Msg-Id": id,
  };
  for (const [name, value] of Object.entries(expected)) {
    if (header(name) !== value) {
      throw new Rejected(`${name} is ${JSON.stringify(header(name))}, expected ${JSON.stringify(value)}`);
    }
  }
  if (!UUID.test(id)) throw new Rejected(`ce-id ${JSON.stringify(id)} is not a UUID`);
  if (!header("ce-source").startsWith("/qcdc/")) throw new Rejected(`ce-source ${header("ce-source")}`);
  if (Number.isNaN(Date.parse(header("ce-time")))) throw new Rejected(`ce-time ${header("ce-time")}`);
  let data;
  try {
    data = msg.json();
  } catch (err) {
    throw new Rejected(`body: ${err.message}`);
  }
  if (!Array.isArray(data?.unit_path) || data.unit_path.join(".") !== path) {
    throw new Rejected("the body's unit_path does not end the subject");
  }
  return { id, type: expected["ce-type"], time: header("ce-time"), data };
}

/** Handled ce-ids, one per line; in production keep them in your own database. */
class Seen {
  constructor(path) {
    this.path = path;
    this.ids = new Set(existsSync(path) ? readFileSync(path, "utf8").split("\n").filter(Boolean) : []);
  }
  firstTime(id) {
    if (this.ids.has(id)) return false;
    appendFileSync(this.path, `${id}\n`); // written before the ack: a crash means a duplicate, never a loss
    this.ids.add(id);
    return true;
  }
}

function report(outcome, msg, fields) {
  process.stdout.write(`${JSON.stringify({ outcome, subject: msg.subject, ...fields })}\n`);
}

function handle(msg, seen, acks) {
  let event;
  try {
    event = check(msg);
  } catch (err) {
    if (!(err instanceof Rejected)) throw err;
    report("rejected", msg, { reason: err.message, ce_id: msg.headers?.get("ce-id") ?? null });
    if (acks) msg.term(); // never redelivered; it stays in the stream's history
    return;
  }
  // Your handling goes here, before the id is recorded.
  const outcome = seen.firstTime(event.id) ? "handled" : "duplicate";
  report(outcome, msg, { ce_id: event.id, type: event.type });
  if (acks) msg.ack();
}

/** Fetch until the consumer has nothing pending (asked of the server, so an empty
 * consumer costs no fetch timeout). */
async function readPending(consumer, seen, acks) {
  while ((await consumer.info()).num_pending > 0) {
    const batch = await consumer.fetch({ max_messages: BATCH, expires: 5000 });
    for await (const msg of batch) {
      handle(msg, seen, acks);
      if (msg.info.pending === 0) break;
    }
  }
}

/** `>` needs at least one token: the unit itself, and everything below it. */
const filters = (subtree) => [`qcdc.v1.*.*.${subtree}`, `qcdc.v1.*.*.${subtree}.>`];
const PARTS = ["self", "below"];

/** Everything the durable has not acked yet; one filter per consumer (a subtree
 * credential may create only consumers whose filter the server can check). */
async function drain(jsm, js, stream, durable, subject, seen) {
  try {
    await jsm.consumers.info(stream, durable);
  } catch {
    await jsm.consumers.add(stream, {
      durable_name: durable,
      filter_subject: subject,
      ack_policy: AckPolicy.Explicit,
      ack_wait: 30_000_000_000, // nanoseconds
      max_deliver: 10,
    });
  }
  await readPending(await js.consumers.get(stream, durable), seen, true);
}

/** The history on `subject` from `since`: an ordered consumer, no acks, no name to keep. */
async function replay(js, stream, user, subject, since, seen) {
  const consumer = await js.consumers.get(stream, {
    name_prefix: `${user}-replay-${Date.now()}`,
    filter_subjects: subject,
    deliver_policy: DeliverPolicy.StartTime,
    opt_start_time: since.toISOString(),
  });
  await readPending(consumer, seen, false);
}

async function main() {
  const { values } = parseArgs({
    options: {
      subtree: { type: "string", default: process.env.QCDC_SUBTREE },
      durable: { type: "string" },
      since: { type: "string" },
      once: { type: "boolean", default: false },
      seen: { type: "string", default: "seen-ids.txt" },
    },
  });
  if (!values.subtree || !(values.durable || values.since)) {
    throw new Error("--subtree and one of --durable or --since are required");
  }
  const since = values.since ? new Date(values.since) : null;
  if (since && Number.isNaN(since.getTime())) throw new Error(`--since ${values.since}: not a time`);
  const user = process.env.QCDC_NATS_USER ?? "anonymous";
  const nc = await connect({
    servers: process.env.QCDC_NATS_URL ?? "nats://127.0.0.1:4222",
    user: process.env.QCDC_NATS_USER,
    pass: process.env.QCDC_NATS_PASSWORD,
    inboxPrefix: process.env.QCDC_NATS_INBOX_PREFIX || undefined,
  });
  const jsm = await jetstreamManager(nc);
  const js = jetstream(nc);
  const seen = new Seen(values.seen);
  try {
    do {
      for (const stream of EVENT_STREAMS) {
        for (const [index, subject] of filters(values.subtree).entries()) {
          if (since) {
            await replay(js, stream, user, subject, since, seen);
          } else {
            const short = stream.replace(/^QCDC_/, "").toLowerCase();
            const durable = `${values.durable}-${short}-${PARTS[index]}`;
            await drain(jsm, js, stream, durable, subject, seen);
          }
        }
      }
    } while (!values.once && !since);
  } finally {
    await nc.close();
  }
}

main().catch((err) => {
  process.stderr.write(`${err.stack ?? err}\n`);
  process.exit(1);
});
