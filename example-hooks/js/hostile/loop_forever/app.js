// Hostile fixture: a record whose `metadata.loop` is true loops forever; the others pass with
// their id.
//
// The hook announces each record (`beginRecord`), so the host stops only the looping record
// (`fuel_exhausted`, or `timeout` when the clock runs out first) and its batch-mates keep their
// rows. tests/js_hooks.rs runs it.

import { beginRecord } from 'hookhost:hook/host@0.2.0';

export function contract() {
  return {
    feature: 'echo_id',
    cardinality: 'one',
    columns: [{ name: 'id', ty: 'text', nullable: false, description: "The record's id." }],
  };
}

export function configure(_config) {}

export function process(records) {
  return records.map((record, index) => {
    beginRecord(index);
    const metadata = JSON.parse(record.metadata);
    if (metadata !== null && metadata.loop === true) {
      let n = 0;
      for (;;) n += 1;
    }
    return { index, outcome: { tag: 'passed', val: [[{ tag: 'text', val: record.id }]] } };
  });
}
