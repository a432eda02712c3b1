//! Key generation and the proving-key file.

use std::sync::Arc;

use halo2_proofs::halo2curves::bn256::{Bn256, G1Affine};
use halo2_proofs::plonk::{keygen_pk, keygen_vk, ProvingKey};
use halo2_proofs::poly::commitment::Params;
use halo2_proofs::poly::kzg::commitment::ParamsKZG;
use halo2_proofs::SerdeFormat;
use zkinfer_circuits::ModelCircuit;
use zkinfer_qir::QModel;
use zkinfer_verifier::artifact::{
    read_container, write_container, StatementInfo, VerifierKey, PK_MAGIC,
};

use crate::srs::srs_points;
use crate::ProveError;

/// The proving key with the statement it proves.
#[derive(Clone, Debug)]
pub struct ProverKey {
    pub info: StatementInfo,
    pub pk: ProvingKey<G1Affine>,
}

impl ProverKey {
    pub fn to_bytes(&self) -> Vec<u8> {
        write_container(
            PK_MAGIC,
            &self.info,
            &self.pk.to_bytes(SerdeFormat::RawBytes),
        )
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ProveError> {
        let (info, body): (StatementInfo, _) = read_container(bytes, PK_MAGIC, "proving key")?;
        info.validate()
            .map_err(|e| ProveError::Keygen(format!("corrupt proving key: {e}")))?;
        let layout = info.layout.clone();
        let pk = ProvingKey::<G1Affine>::read::<_, ModelCircuit>(
            &mut &body[..],
            SerdeFormat::RawBytes,
            layout,
        )
        .map_err(|e| ProveError::Keygen(format!("corrupt proving key: {e}")))?;
        Ok(ProverKey { info, pk })
    }
}

/// Generates the proving and verifying keys of `model` laid out as `info.layout`.
pub fn setup(
    model: Arc<QModel>,
    info: StatementInfo,
    params: &ParamsKZG<Bn256>,
) -> Result<(ProverKey, VerifierKey), ProveError> {
    let circuit = ModelCircuit::new(model, info.layout.clone());
    let vk = keygen_vk(params, &circuit).map_err(|e| ProveError::Keygen(format!("{e:?}")))?;
    let pk = keygen_pk(params, vk.clone(), &circuit)
        .map_err(|e| ProveError::Keygen(format!("{e:?}")))?;
    let verifier = VerifierKey {
        info: info.clone(),
        k: params.k(),
        srs: srs_points(params),
        vk,
    };
    Ok((ProverKey { info, pk }, verifier))
}

impl ProverKey {
    /// The model id of the statement this key proves with `params` (the same as the
    /// verifying key's, [`VerifierKey::model_id`]).
    pub fn model_id(&self, params: &ParamsKZG<Bn256>) -> String {
        zkinfer_verifier::model_id(
            &self.info,
            params.k(),
            &srs_points(params),
            self.pk.get_vk(),
        )
    }
}
