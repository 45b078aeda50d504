//! The audit log's Merkle tree (RFC 9162 section 2.1, the same tree as
//! RFC 6962): leaf hash `SHA-256(0x00 || leaf)`, interior node
//! `SHA-256(0x01 || left || right)`, and for `n` leaves the left subtree
//! holds the largest power of two smaller than `n`.
//!
//! The leaf of audit record `#seq` is leaf index `seq - 1`, and its leaf
//! data are the 32 raw bytes of the record's stored chain hash
//! (`storage::chain::record_hash`), which covers the record's sequence
//! number, time, actor, action, subject, details and the previous hash.
//! So the tree commits to every record's content and to the chain.
//!
//! What this module owns, all pure functions over hashes:
//! * [`Frontier`]: the at most `log2(n)+1` roots of the perfect subtrees of
//!   the first `n` leaves; it appends a leaf in `O(log n)` and gives the
//!   root in `O(log n)` (kept in `audit_head` by `Db::write`).
//! * [`root`], [`inclusion_proof`] and [`consistency_proof`]: the RFC's
//!   `MTH`, `PATH` and `PROOF` over a slice of leaf hashes.
//! * [`verify_inclusion`] and [`verify_consistency`]: checked with the
//!   `ct-merkle` crate, a maintained RFC 6962 implementation.
//!
//! Why the proof *generation* is written here and not taken from
//! `ct-merkle`: that crate builds proofs only from its in-memory tree or
//! from its own internal node numbering, while the audit log's leaves live
//! in the database; the RFC's recursive definitions over a slice of leaf
//! hashes are a few lines each. Verification, the part a relying party
//! runs, is `ct-merkle`'s, so the two sides are not the same code (and the
//! RFC 6962 test vectors pin both).

use sha2::{Digest, Sha256};

/// A SHA-256 hash.
pub type Hash = [u8; 32];

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MerkleError {
    #[error("leaf index {index} is outside a tree of {size} leaves")]
    IndexOutOfRange { index: u64, size: u64 },
    #[error("tree size {size} is larger than the {available} leaves at hand")]
    TooFewLeaves { size: u64, available: u64 },
    #[error("a consistency proof needs 0 < old size {old} <= new size {new}")]
    BadSizes { old: u64, new: u64 },
    #[error("the inclusion proof does not lead to the root")]
    InclusionFailed,
    #[error("the consistency proof does not lead to both roots")]
    ConsistencyFailed,
    #[error("the frontier does not fit a tree of {size} leaves")]
    BadFrontier { size: u64 },
}

/// `SHA-256(0x00 || data)`.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(data);
    h.finalize().into()
}

/// `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The root of the empty tree: `SHA-256()` (RFC 9162 section 2.1.1).
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// The largest power of two smaller than `n` (`n >= 2`).
fn split(n: usize) -> usize {
    debug_assert!(n >= 2);
    1 << (usize::BITS - 1 - (n - 1).leading_zeros())
}

/// `MTH(D[n])` over leaf hashes.
pub fn root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => empty_root(),
        1 => leaves[0],
        n => {
            let k = split(n);
            node_hash(&root(&leaves[..k]), &root(&leaves[k..]))
        }
    }
}

/// `PATH(m, D[n])`: the audit path of leaf `index` in the tree of `leaves`
/// (RFC 9162 section 2.1.3.1), bottom up.
pub fn inclusion_proof(leaves: &[Hash], index: u64) -> Result<Vec<Hash>, MerkleError> {
    let size = leaves.len() as u64;
    if index >= size {
        return Err(MerkleError::IndexOutOfRange { index, size });
    }
    fn path(m: usize, d: &[Hash], out: &mut Vec<Hash>) {
        if d.len() <= 1 {
            return;
        }
        let k = split(d.len());
        if m < k {
            path(m, &d[..k], out);
            out.push(root(&d[k..]));
        } else {
            path(m - k, &d[k..], out);
            out.push(root(&d[..k]));
        }
    }
    let mut out = Vec::new();
    path(index as usize, leaves, &mut out);
    Ok(out)
}

/// `PROOF(m, D[n])`: the consistency proof between the first `old` leaves
/// and all of `leaves` (RFC 9162 section 2.1.4.1).
pub fn consistency_proof(leaves: &[Hash], old: u64) -> Result<Vec<Hash>, MerkleError> {
    let new = leaves.len() as u64;
    if old == 0 || old > new {
        return Err(MerkleError::BadSizes { old, new });
    }
    fn subproof(m: usize, d: &[Hash], whole: bool, out: &mut Vec<Hash>) {
        let n = d.len();
        if m == n {
            if !whole {
                out.push(root(d));
            }
            return;
        }
        let k = split(n);
        if m <= k {
            subproof(m, &d[..k], whole, out);
            out.push(root(&d[k..]));
        } else {
            subproof(m - k, &d[k..], false, out);
            out.push(root(&d[..k]));
        }
    }
    let mut out = Vec::new();
    subproof(old as usize, leaves, true, &mut out);
    Ok(out)
}

/// Checks that `leaf_data` is leaf `index` of the tree of `size` leaves
/// whose root is `root`.
pub fn verify_inclusion(
    leaf_data: &[u8],
    index: u64,
    size: u64,
    path: &[Hash],
    root: &Hash,
) -> Result<(), MerkleError> {
    if index >= size {
        return Err(MerkleError::IndexOutOfRange { index, size });
    }
    let root = ct_merkle::RootHash::<sha2_11::Sha256>::new((*root).into(), size);
    let proof = ct_merkle::InclusionProof::<sha2_11::Sha256>::from_bytes(path.concat());
    root.verify_inclusion(&leaf_data, index, &proof)
        .map_err(|_| MerkleError::InclusionFailed)
}

/// Checks that the tree of `old_size` leaves with root `old_root` is a
/// prefix of the tree of `new_size` leaves with root `new_root`.
pub fn verify_consistency(
    old_size: u64,
    old_root: &Hash,
    new_size: u64,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), MerkleError> {
    if old_size == 0 || old_size > new_size {
        return Err(MerkleError::BadSizes {
            old: old_size,
            new: new_size,
        });
    }
    if old_size == new_size {
        // ct-merkle accepts an empty proof here; the roots must be equal.
        return if proof.is_empty() && old_root == new_root {
            Ok(())
        } else {
            Err(MerkleError::ConsistencyFailed)
        };
    }
    let old = ct_merkle::RootHash::<sha2_11::Sha256>::new((*old_root).into(), old_size);
    let new = ct_merkle::RootHash::<sha2_11::Sha256>::new((*new_root).into(), new_size);
    let proof = ct_merkle::ConsistencyProof::<sha2_11::Sha256>::try_from_bytes(proof.concat())
        .map_err(|_| MerkleError::ConsistencyFailed)?;
    new.verify_consistency(&old, &proof)
        .map_err(|_| MerkleError::ConsistencyFailed)
}

/// The roots of the perfect subtrees of the first `size` leaves, largest
/// (leftmost) first: one per bit set in `size`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Frontier {
    size: u64,
    nodes: Vec<Hash>,
}

impl Frontier {
    /// The frontier of the empty tree.
    pub fn new() -> Frontier {
        Frontier::default()
    }

    /// Rebuilds a frontier from its stored parts, checking that the
    /// number of hashes fits `size`.
    pub fn from_parts(size: u64, nodes: Vec<Hash>) -> Result<Frontier, MerkleError> {
        if nodes.len() != size.count_ones() as usize {
            return Err(MerkleError::BadFrontier { size });
        }
        Ok(Frontier { size, nodes })
    }

    /// Reads the stored text form ([`Frontier::to_text`]).
    pub fn from_text(size: u64, text: &str) -> Result<Frontier, MerkleError> {
        let nodes = text
            .split(',')
            .filter(|s| !s.is_empty())
            .map(|s| {
                hex::decode(s)
                    .ok()
                    .and_then(|b| Hash::try_from(b).ok())
                    .ok_or(MerkleError::BadFrontier { size })
            })
            .collect::<Result<Vec<Hash>, _>>()?;
        Frontier::from_parts(size, nodes)
    }

    /// The stored text form: the hashes in hex, comma-separated.
    pub fn to_text(&self) -> String {
        self.nodes
            .iter()
            .map(hex::encode)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The number of leaves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends a leaf, given its leaf hash.
    pub fn push(&mut self, leaf: Hash) {
        let mut carry = leaf;
        let mut size = self.size;
        // Each trailing 1 bit is a perfect subtree of the same height:
        // merge it, like a carry in binary addition.
        while size & 1 == 1 {
            let left = self.nodes.pop().expect("one node per set bit");
            carry = node_hash(&left, &carry);
            size >>= 1;
        }
        self.nodes.push(carry);
        self.size += 1;
    }

    /// The root of the tree of the leaves pushed so far.
    pub fn root(&self) -> Hash {
        let mut nodes = self.nodes.iter().rev();
        match nodes.next() {
            None => empty_root(),
            Some(last) => nodes.fold(*last, |acc, left| node_hash(left, &acc)),
        }
    }
}

/// The leaf data of an audit record: its stored chain hash (hex) decoded.
pub fn leaf_data_of(record_hash_hex: &str) -> Option<Hash> {
    hex::decode(record_hash_hex)
        .ok()
        .and_then(|b| Hash::try_from(b).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hd(s: &str) -> Hash {
        Hash::try_from(hex::decode(s).unwrap()).unwrap()
    }

    /// The leaves of the RFC 6962 reference implementation's tests
    /// (certificate-transparency `merkle_tree_test.cc`, also used by
    /// transparency-dev/merkle's `testonly` package).
    fn leaves() -> Vec<Vec<u8>> {
        [
            "",
            "00",
            "10",
            "2021",
            "3031",
            "40414243",
            "5051525354555657",
            "606162636465666768696a6b6c6d6e6f",
        ]
        .iter()
        .map(|s| hex::decode(s).unwrap())
        .collect()
    }

    fn leaf_hashes() -> Vec<Hash> {
        leaves().iter().map(|l| leaf_hash(l)).collect()
    }

    /// The MTH of the first n leaves, n = 0..=8.
    const ROOTS: [&str; 9] = [
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];

    #[test]
    fn roots_match_the_rfc6962_test_vectors() {
        let l = leaf_hashes();
        let mut frontier = Frontier::new();
        assert_eq!(frontier.root(), hd(ROOTS[0]));
        for n in 1..=8 {
            assert_eq!(root(&l[..n]), hd(ROOTS[n]), "MTH of {n} leaves");
            frontier.push(l[n - 1]);
            assert_eq!(frontier.root(), hd(ROOTS[n]), "frontier root of {n}");
            assert_eq!(frontier.size(), n as u64);
        }
    }

    #[test]
    fn inclusion_proofs_match_the_rfc6962_test_vectors() {
        let l = leaf_hashes();
        let cases: [(u64, usize, &[&str]); 4] = [
            (
                0,
                8,
                &[
                    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
                ],
            ),
            (
                5,
                8,
                &[
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ],
            ),
            (0, 1, &[]),
            (
                2,
                3,
                &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
            ),
        ];
        for (index, size, expected) in cases {
            let got = inclusion_proof(&l[..size], index).unwrap();
            let expected: Vec<Hash> = expected.iter().map(|s| hd(s)).collect();
            assert_eq!(got, expected, "PATH({index}, D[{size}])");
            verify_inclusion(
                &leaves()[index as usize],
                index,
                size as u64,
                &got,
                &hd(ROOTS[size]),
            )
            .unwrap();
        }
    }

    #[test]
    fn consistency_proofs_match_the_rfc6962_test_vectors() {
        let l = leaf_hashes();
        let cases: [(u64, usize, &[&str]); 4] = [
            (1, 1, &[]),
            (
                1,
                8,
                &[
                    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
                ],
            ),
            (
                6,
                8,
                &[
                    "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ],
            ),
            (
                2,
                5,
                &[
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                ],
            ),
        ];
        for (old, new, expected) in cases {
            let got = consistency_proof(&l[..new], old).unwrap();
            let expected: Vec<Hash> = expected.iter().map(|s| hd(s)).collect();
            assert_eq!(got, expected, "PROOF({old}, D[{new}])");
            verify_consistency(
                old,
                &hd(ROOTS[old as usize]),
                new as u64,
                &hd(ROOTS[new]),
                &got,
            )
            .unwrap();
        }
    }

    #[test]
    fn every_proof_of_every_size_verifies_and_a_wrong_one_does_not() {
        let l: Vec<Hash> = (0u32..70).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        let mut frontier = Frontier::new();
        for n in 1..=l.len() {
            frontier.push(l[n - 1]);
            let r = root(&l[..n]);
            assert_eq!(frontier.root(), r, "frontier of {n}");
            let back = Frontier::from_text(n as u64, &frontier.to_text()).unwrap();
            assert_eq!(back, frontier);
            for i in 0..n as u64 {
                let p = inclusion_proof(&l[..n], i).unwrap();
                // The leaf data here are the leaf hashes' inputs.
                let data = (i as u32).to_be_bytes();
                verify_inclusion(&data, i, n as u64, &p, &r).unwrap();
                assert_eq!(
                    verify_inclusion(&[9], i, n as u64, &p, &r),
                    Err(MerkleError::InclusionFailed)
                );
            }
            for m in 1..=n as u64 {
                let p = consistency_proof(&l[..n], m).unwrap();
                let old = root(&l[..m as usize]);
                verify_consistency(m, &old, n as u64, &r, &p).unwrap();
                let wrong = leaf_hash(b"not the old root");
                assert!(verify_consistency(m, &wrong, n as u64, &r, &p).is_err());
            }
        }
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        let l = leaf_hashes();
        assert!(inclusion_proof(&l, 8).is_err());
        assert!(consistency_proof(&l, 0).is_err());
        assert!(consistency_proof(&l, 9).is_err());
        assert!(Frontier::from_text(3, "00").is_err());
        assert!(Frontier::from_text(1, "zz").is_err());
        assert!(verify_inclusion(b"", 1, 1, &[], &hd(ROOTS[1])).is_err());
        assert!(verify_consistency(2, &hd(ROOTS[2]), 1, &hd(ROOTS[1]), &[]).is_err());
    }
}
