// Batches and flows: the queue page's Batches panel (GET
// /v1/queues/{queue}/batches), the batch page (its state, counts, times,
// callbacks and jobs, from GET .../batches/{id} and .../batches/{id}/jobs)
// and the flow page (the flow's tree of jobs with their states, from GET
// .../flows/{root}); and, on a job's page, links to its batch and flow.
//
// A module of its own, imported by app.js; it builds nodes with the page's
// own helpers (passed in as `parts`), so it follows the same rules: no HTML
// strings, a stable data-key on every row for the in-place merge.

/** Batches the queue page's panel shows. */
const PANEL_BATCHES = 20;
/** Jobs the batch page shows (one page of GET .../batches/{id}/jobs). */
const PAGE_JOBS = 100;

/** The module, made with the page's helpers: `{route, pages, panel,
 * jobLinks, links}`. */
export function batchesModule(parts) {
  const { h, td, table, num, time, badge, stateBadge, breadcrumbs, section, card, get, enc, links } = parts;

  const link = {
    batches: (q) => `#/queues/${enc(q)}/batches`,
    batch: (q, id) => `#/queues/${enc(q)}/batches/${enc(id)}`,
    flow: (q, root) => `#/queues/${enc(q)}/flows/${enc(root)}`,
  };

  /** The route of `#/queues/{queue}/...` path `segments`, or null. */
  function route(queue, segments) {
    if (segments.length !== 4) return null;
    if (segments[2] === 'batches') return { name: 'batch', queue, id: segments[3] };
    if (segments[2] === 'flows') return { name: 'flow', queue, root: segments[3] };
    return null;
  }

  function batchState(s, testid = 'batch-state') {
    const kind = { open: 'info', complete: 'warn', succeeded: 'ok' }[s] ?? 'neutral';
    return badge(s ?? '?', kind, testid);
  }

  function callbackState(s) {
    const kind = { waiting: 'neutral', enqueued: 'ok', dropped: 'muted' }[s] ?? 'neutral';
    return badge(s ?? '?', kind, 'callback-state');
  }

  /** A job's id, linked to its page. */
  const jobLink = (q, id, testid) => h('a', { href: links.job(q, id), testid }, h('code', { text: id }));

  /** The queue page's Batches panel; `list` is the route's answer (or the
   * Error it failed with). */
  function panel(q, list) {
    if (list instanceof Error) {
      return h('p', { class: 'empty', testid: 'batches-unavailable', text: `Batches unavailable: ${list.message}` });
    }
    if (list.length === 0) {
      return h('p', { class: 'empty', testid: 'batches-empty', text: `No batches. Create one with \`ferry batch create ${q} FILE\` or POST /v1/queues/{queue}/batches.` });
    }
    const rows = list.map((b) => h('tr', { 'data-key': b.id, 'data-batch': b.id, testid: 'batch-row' },
      h('th', { scope: 'row' }, h('a', { href: link.batch(q, b.id), testid: 'batch-link' }, h('code', { text: b.id }))),
      td(batchState(b.state)),
      td(num(b.total), { class: 'num', testid: 'batch-total' }),
      td(num(b.pending), { class: 'num', testid: 'batch-pending' }),
      td(num(b.succeeded), { class: 'num', testid: 'batch-succeeded' }),
      td(num(b.failed), { class: 'num', testid: 'batch-failed' }),
      td(time(b.created_at), { testid: 'batch-created' }),
      td(b.description ?? '—', { class: 'muted' }),
    ));
    return [
      h('p', { class: 'muted hint', text: `Jobs enqueued together, with callbacks enqueued when they are done; the newest ${PANEL_BATCHES} kept (open, or finished within the record retention).` }),
      table('batches-table', [
        'batch', 'state',
        { text: 'total', class: 'num' }, { text: 'pending', class: 'num' },
        { text: 'succeeded', class: 'num' }, { text: 'failed', class: 'num' },
        'created', 'description',
      ], rows, { caption: 'Batches' }),
    ];
  }

  /** The path the queue page reads its panel from. */
  const panelPath = (q) => `/v1/queues/${enc(q)}/batches?limit=${PANEL_BATCHES}`;

  function callbackRow(q, label, cb, key) {
    return h('tr', { 'data-key': key, testid: `batch-${key}` },
      h('th', { scope: 'row', text: label }),
      td(cb ? jobLink(q, cb.id, 'callback-link') : '—'),
      td(cb ? callbackState(cb.state) : '—'),
    );
  }

  async function batch({ queue: q, id }) {
    const base = `/v1/queues/${enc(q)}/batches/${enc(id)}`;
    const [b, page] = await Promise.all([
      get(base),
      get(`${base}/jobs?count=${PAGE_JOBS}`).catch((e) => e),
    ]);
    const jobs = page instanceof Error ? null : page.jobs;
    const rows = (jobs ?? []).map((j) => h('tr', { 'data-key': j.id, 'data-id': j.id, testid: 'batch-job-row' },
      td(jobLink(q, j.id, 'batch-job-link')),
      td(j.state ? stateBadge(j.state) : badge('not kept', 'muted', 'job-state')),
      td(j.job_type ?? '—', { testid: 'batch-job-type' }),
    ));
    return h('div', { class: 'page', 'data-key': `batch:${q}:${id}` },
      breadcrumbs(['Queues', '#/'], [q, links.queue(q)], ['Batches', null], [id, null]),
      h('div', { class: 'title-row' },
        h('h1', {}, 'Batch ', h('code', { testid: 'batch-id', text: b.id })),
        batchState(b.state, 'batch-title-state'),
      ),
      b.description ? h('p', { class: 'muted', testid: 'batch-description', text: b.description }) : null,
      h('div', { class: 'cards' },
        card('Total', num(b.total), 'batch-count-total', 'Its jobs, however many joined'),
        card('Pending', num(b.pending), 'batch-count-pending', 'Not finished'),
        card('Succeeded', num(b.succeeded), 'batch-count-succeeded'),
        card('Failed', num(b.failed), 'batch-count-failed', 'Dead, or cancelled'),
        card('Dead', num(b.dead), 'batch-count-dead', 'Of the failed, those in the dead letters: a replay may still succeed'),
        card('Created', time(b.created_at), 'batch-created-at', null, true),
        b.completed_at ? card('Completed', time(b.completed_at), 'batch-completed-at', 'When its last job finished', true) : null,
        b.succeeded_at ? card('Succeeded at', time(b.succeeded_at), 'batch-succeeded-at', 'When its last job succeeded, all succeeded', true) : null,
      ),
      section('Callbacks',
        h('p', { class: 'muted hint', text: 'On success: enqueued once every job has succeeded (dropped when one fails for good). On complete: enqueued once every job has finished, whatever the outcome.' }),
        table('batch-callbacks', ['callback', 'job', 'state'], [
          callbackRow(q, 'On success', b.on_success, 'on-success'),
          callbackRow(q, 'On complete', b.on_complete, 'on-complete'),
        ], { caption: 'Callbacks' })),
      section('Jobs',
        page instanceof Error
          ? h('p', { class: 'empty', testid: 'batch-jobs-unavailable', text: `Jobs unavailable: ${page.message}` })
          : [
            rows.length === 0
              ? h('p', { class: 'empty', testid: 'batch-jobs-empty', text: 'No jobs kept.' })
              : table('batch-jobs-table', ['id', 'state', 'type'], rows, { caption: 'Jobs of the batch' }),
            page.next_cursor !== 0
              ? h('p', { class: 'muted hint', testid: 'batch-jobs-more', text: `Showing a first page of ${num(rows.length)} of ${num(b.total)} jobs.` })
              : null,
          ]),
    );
  }

  /** The flow's jobs (parents first, each with its depth) as nested lists:
   * each job a node, its children indented under it. */
  function tree(q, jobs) {
    const top = h('ul', { class: 'flow-tree', testid: 'flow-tree' });
    // The list at each depth of the current path, and its last node.
    const lists = [top];
    const last = [];
    for (const j of jobs) {
      const depth = Math.min(j.depth ?? 0, lists.length);
      if (depth === lists.length) {
        const sub = h('ul', { class: 'flow-children' });
        last[depth - 1].append(sub);
        lists.push(sub);
      }
      lists.length = depth + 1;
      last.length = depth;
      const node = h('li', { 'data-key': j.id, 'data-id': j.id, 'data-depth': j.depth, 'data-parent': j.parent, testid: 'flow-node' },
        jobLink(q, j.id, 'flow-job-link'), ' ',
        j.state ? stateBadge(j.state) : badge('not kept', 'muted', 'job-state'), ' ',
        h('span', { class: 'muted', testid: 'flow-job-type', text: j.job_type ?? '' }),
        j.waiting_for ? h('span', { class: 'muted', testid: 'flow-waiting-for', text: ` waiting for ${j.waiting_for}` }) : null,
      );
      lists[depth].append(node);
      last[depth] = node;
    }
    return top;
  }

  async function flow({ queue: q, root }) {
    const g = await get(`/v1/queues/${enc(q)}/flows/${enc(root)}`);
    return h('div', { class: 'page', 'data-key': `flow:${q}:${root}` },
      breadcrumbs(['Queues', '#/'], [q, links.queue(q)], ['Flows', null], [root, null]),
      h('div', { class: 'title-row' },
        h('h1', {}, 'Flow ', h('code', { testid: 'flow-root', text: g.root })),
        h('span', { class: 'muted', testid: 'flow-count', text: `${num(g.jobs.length)} jobs` }),
      ),
      section('Tree',
        h('p', { class: 'muted hint', text: 'Each job waits for the jobs under it; leaves run first.' }),
        tree(q, g.jobs)),
    );
  }

  /** On a job's page: links to its batch and its flow, if it has them. */
  function jobLinks(q, j) {
    if (!j.batch && !j.flow) return null;
    return section('Batch and flow',
      h('dl', { class: 'facts' },
        j.batch ? [h('dt', { text: 'Batch' }), h('dd', {}, h('a', { href: link.batch(q, j.batch), testid: 'job-batch-link' }, h('code', { text: j.batch })))] : null,
        j.flow ? [h('dt', { text: 'Flow' }), h('dd', {}, h('a', { href: link.flow(q, j.flow), testid: 'job-flow-link' }, h('code', { text: j.flow })))] : null,
      ));
  }

  return { route, pages: { batch, flow }, panel, panelPath, jobLinks, links: link };
}
