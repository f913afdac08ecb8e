// text_stats: word and character statistics of `metadata.text`, one row per record.
//
// The JavaScript twin of `example-hooks/text-stats` (Rust) and `example-hooks/python/text_stats`:
// the same contract (feature, columns, types, nullability, descriptions) and the same rows on
// every input. Written against `wit/hook.wit` alone, with no SDK, and built with componentize-js.
// From the repository root (`make -C example-hooks/js hooks` does the same):
//
//     target/js-tools/node_modules/.bin/componentize-js example-hooks/js/text_stats/app.js \
//         --wit wit --world-name hook --disable http fetch-event -o target/js-hooks/text_stats.wasm
//     host run target/js-hooks/text_stats.wasm --input example-hooks/samples/text.jsonl \
//         --out /tmp/out/js-text
//
// How componentize-js hands `wit/hook.wit` to JavaScript:
// - the world's exports are this module's exported functions (`contract`, `configure`,
//   `process`); the `host` import is the module `hookhost:hook/host@0.2.0`;
// - a WIT record is an object whose fields are camelCase (`sizeHintMb`, `filesDir`); an enum
//   case is its name as a string (`'integer'`, `'float-vector'`); a variant is `{tag, val}`
//   (`{tag: 'null'}` has no `val`); an `s64` is a BigInt; an absent `option<T>` is undefined;
// - `configure`'s `result<_, string>`: returning is `ok`, throwing a string is `err(string)`
//   (throwing an Error object traps instead).
// An exception that escapes `process` traps the call (the host then reruns its records one by
// one), so this hook catches per record and reports an `errored` outcome instead.

import { beginRecord } from 'hookhost:hook/host@0.2.0';

/** The Rust `TextStats` row's contract, column for column (the same contract digest). */
export function contract() {
  return {
    feature: 'text_stats',
    cardinality: 'one',
    columns: [
      column('word_count', 'integer', false, 'Number of whitespace-separated words.'),
      column('char_count', 'integer', false, 'Number of characters (Unicode scalar values).'),
      column(
        'mean_word_length',
        'number',
        false,
        'Mean number of characters per word; 0 when there are no words.',
      ),
      column(
        'longest_word',
        'text',
        true,
        'The first of the longest words; null when there are no words.',
      ),
    ],
  };
}

function column(name, ty, nullable, description) {
  return { name, ty, nullable, description };
}

/** No config: any JSON the host hands over is accepted and ignored (as Rust's `NoConfig`). */
export function configure(_config) {}

/** One outcome per record, each naming its record by index, each record announced first. */
export function process(records) {
  return records.map((record, index) => {
    // From here the host charges this record's fuel and time to record `index` alone.
    beginRecord(index);
    return { index, outcome: outcomeOf(record) };
  });
}

/** A record whose metadata has no string `text` is rejected with the Rust hook's reason. */
class Reject extends Error {}

function outcomeOf(record) {
  try {
    return { tag: 'passed', val: [textStats(textOf(record))] };
  } catch (error) {
    if (error instanceof Reject) {
      return { tag: 'rejected', val: error.message };
    }
    return { tag: 'errored', val: { message: String(error), retryable: false } };
  }
}

function textOf(record) {
  const metadata = JSON.parse(record.metadata);
  // The host hands over valid UTF-8, but JSON's `\ud800` escapes can still make a lone
  // surrogate, which is not Unicode text: refused, as the Rust and Python hooks do.
  if (SURROGATE_ESCAPE.test(record.metadata) && !wellFormed(metadata)) {
    throw new Reject('metadata: not valid JSON: a string holds a lone surrogate escape');
  }
  const text = metadata !== null && typeof metadata === 'object' ? metadata.text : undefined;
  if (typeof text !== 'string') {
    throw new Reject('metadata.text must be a string');
  }
  return text;
}

const SURROGATE_ESCAPE = /\\u[dD][89a-fA-F]/;
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** Whether every string of a parsed JSON value, keys included, is Unicode text. */
function wellFormed(value) {
  if (typeof value === 'string') return !LONE_SURROGATE.test(value);
  if (value === null || typeof value !== 'object') return true;
  return Object.entries(value).every(([key, item]) => wellFormed(key) && wellFormed(item));
}

// Words are maximal runs of characters without Unicode's White_Space property, exactly Rust's
// `split_whitespace`. Not JavaScript's `\s`, which adds U+FEFF and lacks U+0085; and not
// `\p{White_Space}`, which componentize-js 0.23's engine refuses ("invalid class property
// name"): the property's 25 characters are listed instead (Unicode's PropList.txt).
const WORD = /[^\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+/gu;

/** The row, as values in column order. */
function textStats(text) {
  const words = text.match(WORD) ?? [];
  let longest = -1;
  let longestLength = 0;
  let total = 0;
  words.forEach((word, i) => {
    const length = scalarLength(word);
    total += length;
    // `>`, not `>=`: the first of equally long words wins, as in the Rust hook.
    if (longest < 0 || length > longestLength) {
      longest = i;
      longestLength = length;
    }
  });
  return [
    { tag: 'integer', val: BigInt(words.length) },
    { tag: 'integer', val: BigInt(scalarLength(text)) },
    { tag: 'number', val: words.length === 0 ? 0 : total / words.length },
    longest < 0 ? { tag: 'null' } : { tag: 'text', val: words[longest] },
  ];
}

/**
 * The length of `s` in Unicode scalar values (Rust's `chars().count()`), not UTF-16 units:
 * each surrogate pair counts once. `[...s].length` says the same, but in this engine (an
 * interpreter, no JIT) it costs the hook more than twice the fuel per record.
 */
function scalarLength(s) {
  let n = s.length;
  for (let i = 0; i < s.length; i++) {
    const unit = s.charCodeAt(i);
    // The second half of a pair: the strings here are well formed (see textOf).
    if (unit >= 0xdc00 && unit <= 0xdfff) n -= 1;
  }
  return n;
}
