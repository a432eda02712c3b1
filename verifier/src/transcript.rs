//! The Keccak-256 transcript of every zkinfer proof, byte for byte the one Ethereum
//! verifiers read (snark-verifier's `EvmTranscript`): points as big-endian `x ‖ y`,
//! scalars as big-endian 32 bytes, a challenge = keccak256(absorbed bytes) mod r, after
//! which the hash alone is the state. (A squeeze on a bare 32-byte state absorbs one
//! extra `0x01` byte so that successive challenges differ.)
//!
//! zkinfer keeps its own copy of this small piece so that the verifier carries no EVM
//! tooling and builds for WebAssembly; the EVM tests check it against the generated
//! Solidity verifier.

use std::io::{self, Read, Write};

use halo2_proofs::halo2curves::bn256::{Fq, Fr, G1Affine};
use halo2_proofs::halo2curves::ff::{FromUniformBytes, PrimeField};
use halo2_proofs::halo2curves::CurveAffine;
use halo2_proofs::transcript::{
    EncodedChallenge, Transcript, TranscriptRead, TranscriptReadBuffer, TranscriptWrite,
    TranscriptWriterBuffer,
};
use sha3::{Digest, Keccak256};

/// A challenge: the 256-bit big-endian hash reduced modulo r.
#[derive(Clone, Copy, Debug)]
pub struct KeccakChallenge(Fr);

impl EncodedChallenge<G1Affine> for KeccakChallenge {
    type Input = [u8; 32];

    fn new(hash: &[u8; 32]) -> Self {
        let mut wide = [0u8; 64];
        wide[..32].copy_from_slice(hash);
        wide[..32].reverse();
        KeccakChallenge(Fr::from_uniform_bytes(&wide))
    }

    fn get_scalar(&self) -> Fr {
        self.0
    }
}

/// The transcript over a proof stream `S` (a reader to verify, a writer to prove).
#[derive(Debug)]
pub struct KeccakTranscript<S> {
    stream: S,
    state: Vec<u8>,
}

fn be(repr: impl AsRef<[u8]>) -> impl Iterator<Item = u8> {
    let mut b = repr.as_ref().to_vec();
    b.reverse();
    b.into_iter()
}

fn coordinates(p: &G1Affine) -> io::Result<(Fq, Fq)> {
    Option::from(p.coordinates())
        .map(|c: halo2_proofs::halo2curves::Coordinates<G1Affine>| (*c.x(), *c.y()))
        .ok_or_else(|| io::Error::other("the point at infinity has no transcript encoding"))
}

impl<S> Transcript<G1Affine, KeccakChallenge> for KeccakTranscript<S> {
    fn squeeze_challenge(&mut self) -> KeccakChallenge {
        if self.state.len() == 32 {
            self.state.push(1);
        }
        let hash: [u8; 32] = Keccak256::digest(&self.state).into();
        self.state = hash.to_vec();
        KeccakChallenge::new(&hash)
    }

    fn common_point(&mut self, point: G1Affine) -> io::Result<()> {
        let (x, y) = coordinates(&point)?;
        self.state.extend(be(x.to_repr()));
        self.state.extend(be(y.to_repr()));
        Ok(())
    }

    fn common_scalar(&mut self, scalar: Fr) -> io::Result<()> {
        self.state.extend(be(scalar.to_repr()));
        Ok(())
    }
}

fn read_be<T: PrimeField<Repr = [u8; 32]>>(r: &mut impl Read, what: &str) -> io::Result<T> {
    let mut repr = [0u8; 32];
    r.read_exact(&mut repr)?;
    repr.reverse();
    Option::from(T::from_repr(repr))
        .ok_or_else(|| io::Error::other(format!("{what} in the proof is not canonical")))
}

impl<R: Read> TranscriptRead<G1Affine, KeccakChallenge> for KeccakTranscript<R> {
    fn read_point(&mut self) -> io::Result<G1Affine> {
        let x: Fq = read_be(&mut self.stream, "a point coordinate")?;
        let y: Fq = read_be(&mut self.stream, "a point coordinate")?;
        let p = Option::from(G1Affine::from_xy(x, y))
            .ok_or_else(|| io::Error::other("a point in the proof is not on the curve"))?;
        self.common_point(p)?;
        Ok(p)
    }

    fn read_scalar(&mut self) -> io::Result<Fr> {
        let s: Fr = read_be(&mut self.stream, "a scalar")?;
        self.common_scalar(s)?;
        Ok(s)
    }
}

impl<S> KeccakTranscript<S> {
    /// The proof stream, as far as the transcript has not read it.
    pub fn into_stream(self) -> S {
        self.stream
    }
}

impl<R: Read> TranscriptReadBuffer<R, G1Affine, KeccakChallenge> for KeccakTranscript<R> {
    fn init(reader: R) -> Self {
        KeccakTranscript {
            stream: reader,
            state: Vec::new(),
        }
    }
}

impl<W: Write> TranscriptWrite<G1Affine, KeccakChallenge> for KeccakTranscript<W> {
    fn write_point(&mut self, point: G1Affine) -> io::Result<()> {
        self.common_point(point)?;
        let (x, y) = coordinates(&point)?;
        self.stream
            .write_all(&be(x.to_repr()).collect::<Vec<_>>())?;
        self.stream.write_all(&be(y.to_repr()).collect::<Vec<_>>())
    }

    fn write_scalar(&mut self, scalar: Fr) -> io::Result<()> {
        self.common_scalar(scalar)?;
        self.stream
            .write_all(&be(scalar.to_repr()).collect::<Vec<_>>())
    }
}

impl<W: Write> TranscriptWriterBuffer<W, G1Affine, KeccakChallenge> for KeccakTranscript<W> {
    fn init(writer: W) -> Self {
        KeccakTranscript {
            stream: writer,
            state: Vec::new(),
        }
    }

    fn finalize(self) -> W {
        self.stream
    }
}
