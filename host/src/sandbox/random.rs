//! The guest's random generators: seeded, so runs repeat exactly, and replayed from a prefix
//! drawn once per process, so a sandbox pays nothing to give its guest random bytes.
//!
//! Every sandbox's generators start from the same seed, so every sandbox sees the same stream.
//! Drawing it is not free: `wasi:random` hands out one generator word per byte it returns, and
//! an interpreter reseeds itself in every fresh instance (CPython's `random` draws 2 496 bytes),
//! which cost about 0.85 ms of ChaCha per call on these machines (issue 13). So the first
//! [`PREFIX_WORDS`] words of each stream are drawn once, shared by every sandbox, and handed out
//! in order; a guest that draws past them continues on a generator of its own, moved past the
//! prefix, so the values are word for word those of the generator itself (tested).

use std::sync::OnceLock;

use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _, TryRng};

/// Words of each seeded stream drawn once per process and shared: 64 KiB.
pub(crate) const PREFIX_WORDS: usize = 16 * 1024;

/// A seeded stream's shared prefix.
#[derive(Debug)]
pub(crate) struct Prefix {
    seed: u64,
    words: Box<[u32]>,
}

impl Prefix {
    fn draw(seed: u64) -> Prefix {
        let mut rng = StdRng::seed_from_u64(seed);
        let words = (0..PREFIX_WORDS).map(|_| rng.next_u32()).collect();
        Prefix { seed, words }
    }
}

/// The prefix of the stream seeded with `seed`: one of two, drawn on first use.
pub(crate) fn prefix(seed: u64, slot: usize) -> &'static Prefix {
    static PREFIXES: [OnceLock<Prefix>; 2] = [OnceLock::new(), OnceLock::new()];
    let prefix = PREFIXES[slot].get_or_init(|| Prefix::draw(seed));
    assert_eq!(prefix.seed, seed, "one seed per prefix slot");
    prefix
}

/// A seeded generator that hands out its shared prefix first, then continues on its own.
#[derive(Debug)]
pub(crate) struct Replayed {
    prefix: &'static Prefix,
    next: usize,
    rest: Option<StdRng>,
}

impl Replayed {
    /// The stream of `prefix`, from its start.
    pub(crate) fn new(prefix: &'static Prefix) -> Replayed {
        Replayed {
            prefix,
            next: 0,
            rest: None,
        }
    }

    fn word(&mut self) -> u32 {
        if let Some(&word) = self.prefix.words.get(self.next) {
            self.next += 1;
            return word;
        }
        let prefix = self.prefix;
        self.rest
            .get_or_insert_with(|| {
                let mut rng = StdRng::seed_from_u64(prefix.seed);
                for _ in 0..prefix.words.len() {
                    rng.next_u32();
                }
                rng
            })
            .next_u32()
    }
}

impl TryRng for Replayed {
    type Error = std::convert::Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        Ok(self.word())
    }

    /// Two words, the first the low half: what the block generator does.
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        let low = u64::from(self.word());
        let high = u64::from(self.word());
        Ok(high << 32 | low)
    }

    /// A word per four bytes, little-endian; the unused bytes of a last partial word are
    /// dropped: what the block generator does.
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), Self::Error> {
        for chunk in dest.chunks_mut(4) {
            let bytes = self.word().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    /// Each operation on the replayed generator and on the seeded generator itself, in the same
    /// order, gives the same values — across the end of the prefix too.
    #[test]
    fn the_replayed_stream_is_the_seeded_generators_own() {
        let seed = 0x1234_5678;
        let prefix: &'static Prefix = Box::leak(Box::new(Prefix::draw(seed)));
        let mut replayed = Replayed::new(prefix);
        let mut own = StdRng::seed_from_u64(seed);
        let (mut step, mut past) = (0usize, 0);
        // Past the prefix by a thousand draws, with every kind of draw mixed in.
        while past < 1000 {
            past += usize::from(replayed.rest.is_some());
            match step % 5 {
                0 | 1 => assert_eq!(replayed.next_u32(), own.next_u32(), "step {step}"),
                2 => assert_eq!(replayed.next_u64(), own.next_u64(), "step {step}"),
                _ => {
                    let len = step % 11;
                    let (mut a, mut b) = (vec![0u8; len], vec![0u8; len]);
                    replayed.fill_bytes(&mut a);
                    own.fill_bytes(&mut b);
                    assert_eq!(a, b, "step {step}");
                }
            }
            step += 1;
        }
        // What wasi:random does: a word per byte.
        let dyn_replayed: &mut dyn Rng = &mut replayed;
        let dyn_own: &mut dyn Rng = &mut own;
        assert_eq!(dyn_replayed.next_u32(), dyn_own.next_u32());
    }
}
