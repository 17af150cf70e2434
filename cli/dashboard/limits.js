// The queue page's Limits panel: the concurrency limits (the queue's,
// every key's, each type's and key's gate with its running and waiting
// jobs) and the rate limits (the queue's, every key's, each gate's limit,
// hold, next slot and parked jobs), from GET /v1/queues/{queue}/concurrency
// and GET /v1/queues/{queue}/rate_limits.
//
// A module of its own, imported by app.js; it builds nodes with the page's
// own helpers (passed in as `parts`), so it follows the same rules: no HTML
// strings, a stable data-key on every row for the in-place merge.

/** A rate limit as `ferry` prints it: `50/1s`, `10/500ms`, `1000/1m`, with
 * `:<burst>` when the burst is not the default tenth of n. */
export function rateText(limit) {
  if (!limit) return null;
  const p = limit.period_ms;
  const unit = [[3_600_000, 'h'], [60_000, 'm'], [1000, 's']].find(([ms]) => p % ms === 0);
  const period = unit ? `${p / unit[0]}${unit[1]}` : `${p}ms`;
  const burst = Math.max(1, Math.ceil(limit.n / 10));
  return `${limit.n}/${period}${limit.burst !== burst ? `:${limit.burst}` : ''}`;
}

/** A rate state (`RateState`) in a few words: `50/1s, not limited`, or
 * `rate limited, next slot in 4.2 s`. */
function stateText(s, duration) {
  if (!s) return 'no limit';
  const limit = rateText(s.limit) ?? 'no limit';
  if (!s.limited) return `${limit}, not limited`;
  const held = s.held_until_ms ? 'held, ' : '';
  return `${limit}, ${held}rate limited, next slot in ${duration(s.next_slot_in_ms)}`;
}

/** The panel's content. `concurrency` and `rates` are the routes' answers
 * (or the Error each failed with). */
export function limitsView(q, concurrency, rates, parts) {
  const { h, td, table, num, time, duration } = parts;
  const hint = h('p', { class: 'muted hint', text: `Concurrency: at most N jobs running at once; rate: at most n job starts per period, fleet-wide, by the Redis server’s clock. A job over a type’s or key’s limit waits at its gate while the rest of the queue goes on. Change them with \`ferry limit ${q} --type T|--key K N|none\`, \`ferry limit ${q} --type T|--key K --rate 50/1s|none\` and \`ferry settings ${q} --concurrency|--key-concurrency|--rate-limit|--key-rate-limit\`.` });
  const failed = [
    concurrency instanceof Error ? `concurrency limits unavailable: ${concurrency.message}` : null,
    rates instanceof Error ? `rate limits unavailable: ${rates.message}` : null,
  ].filter(Boolean);
  const conc = concurrency instanceof Error ? null : concurrency;
  const rl = rates instanceof Error ? null : rates;
  const limitNum = (v) => (v === null || v === undefined ? 'no limit' : num(v));

  const summaryRow = (label, key, c, r, rTitle) =>
    h('tr', { testid: 'limits-row', 'data-key': key },
      h('th', { scope: 'row', text: label }),
      td(conc ? limitNum(c) : '—', { testid: `limits-${key}-concurrency` }),
      td(rl ? r : '—', { testid: `limits-${key}-rate`, title: rTitle }));
  const queueRate = rl?.queue;
  const queueTitle = queueRate
    ? [
      queueRate.held_until_ms ? `held until ${time(queueRate.held_until_ms)}` : null,
      queueRate.next_slot_at_ms ? `next slot at ${time(queueRate.next_slot_at_ms)}` : null,
      queueRate.slots_free !== null && queueRate.slots_free !== undefined ? `${num(queueRate.slots_free)} may start at once now` : null,
    ].filter(Boolean).join('; ') || null
    : null;
  const summary = table('limits-table', ['scope', 'concurrency', 'rate limit'], [
    summaryRow('Queue', 'queue', conc?.queue, stateText(queueRate, duration), queueTitle),
    summaryRow('Every key', 'each-key', conc?.each_key, rateText(rl?.each_key) ?? 'no limit',
      'Where a key has no limit of its own'),
  ], { caption: 'Queue and every-key limits' });

  // One row per gate, from both answers: a type's or key's concurrency
  // limit and slots, and its rate limit, hold and parked jobs.
  const gates = new Map();
  const gate = (name) => {
    if (!gates.has(name)) gates.set(name, { name, conc: null, rate: null });
    return gates.get(name);
  };
  for (const [field, n] of conc?.limits ?? []) gate(field).conc = { limit: n, running: 0, waiting: 0 };
  for (const g of conc?.gates ?? []) gate(g.gate).conc = g;
  for (const g of rl?.gates ?? []) gate(g.gate).rate = g;
  const rows = [...gates.values()].map((g) => {
    const s = g.rate?.state;
    const next = s?.next_slot_in_ms
      ? td(`in ${duration(s.next_slot_in_ms)}`, { testid: 'gate-next-slot', title: time(s.next_slot_at_ms) })
      : td(s ? 'now' : '—', { testid: 'gate-next-slot' });
    return h('tr', { testid: 'limits-gate-row', 'data-key': g.name, 'data-gate': g.name },
      h('th', { scope: 'row' }, h('code', { testid: 'gate-name', text: g.name })),
      td(g.conc ? limitNum(g.conc.limit) : '—', { testid: 'gate-concurrency' }),
      td(g.conc ? num(g.conc.running) : '—', { class: 'num', testid: 'gate-running' }),
      td(g.conc ? num(g.conc.waiting) : '—', { class: 'num', testid: 'gate-waiting' }),
      td(g.rate ? rateText(s?.limit) ?? 'no limit' : '—', { testid: 'gate-rate-limit' }),
      td(s?.held_until_ms ? time(s.held_until_ms) : '—', { testid: 'gate-held-until' }),
      next,
      td(g.rate ? num(g.rate.waiting) : '—', { class: 'num', testid: 'gate-rate-waiting' }),
    );
  });
  return [
    hint,
    failed.length ? h('p', { class: 'empty', testid: 'limits-unavailable', text: failed.join('; ') }) : null,
    summary,
    rows.length === 0
      ? h('p', { class: 'empty', testid: 'limits-gates-empty', text: 'No job type or concurrency key has a limit, a hold or waiting jobs.' })
      : table('limits-gates-table', [
        'gate', 'concurrency', { text: 'running', class: 'num' }, { text: 'waiting', class: 'num' },
        'rate limit', 'held until', 'next slot', { text: 'rate limited', class: 'num' },
      ], rows, { caption: 'Limits of job types and concurrency keys' }),
    rl?.gates?.length >= 1000 || conc?.gates?.length >= 1000
      ? h('p', { class: 'muted hint', text: 'Showing the first 1,000 gates.' })
      : null,
  ];
}
