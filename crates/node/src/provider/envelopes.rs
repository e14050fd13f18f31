//! Key envelopes: how a licensee gets an asset's data key while no storage node ever holds it.
//!
//! An asset's data key exists in the clear only in its owner's home (wrapped to the owner there)
//! and, briefly, in processes of its owner and of readers. The owner's key agent (`tributary asset
//! serve-keys`) wraps the key to each reader the ledger allows (X25519 + HKDF +
//! XChaCha20-Poly1305 to the reader's account key, [`tributary_store::keywrap`]) and delivers
//! those envelopes, with the asset's manifest, to every provider holding a shard of the asset.
//! A reader then asks any of those providers for its own envelope and the manifest.
//!
//! What a provider checks:
//! - a delivery ([`KeyDelivery`]) is signed by an owner of the asset on the ledger, for this
//!   provider, and expires within [`KEY_REQUEST_LIFETIME_MS_MAX`]; the manifest (sent once, then
//!   optional) hashes to the ledger's `manifest_root`; this provider holds a shard of the asset;
//!   at most [`KEY_ENVELOPES_PER_DELIVERY_MAX`] envelopes per delivery and
//!   [`KEY_ENVELOPES_PER_ASSET_MAX`] per asset. Envelopes are merged by reader: a reader's newer
//!   envelope replaces its older one. When an asset's envelopes are full, those of readers the
//!   ledger no longer lets read (expired licenses) are dropped to make room, so an asset licensed
//!   to many readers over time keeps taking new ones.
//! - a key request ([`KeyRequest`]) is signed by the reader, for this provider and asset, and the
//!   ledger lets the reader read (`may_read`: an owner, or the holder of an unexpired license
//!   that is not a training session's). So an envelope kept for a reader whose license has since
//!   expired is not served.
//!
//! Storage: two records beside the asset's shards in the [`tributary_store::ShardStore`]
//! (`manifest` and `key-envelopes`), each replaced atomically (temporary file, fsync, rename).
//! The manifest is written before the envelopes, so an envelope on disk always has its manifest.
//! Envelopes are opaque here: the provider cannot open them.

use super::{ProviderError, StorageProvider, sign_hex, signature_verifies};
use commonware_cryptography::{Signer as _, ed25519};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use tributary_store::{ContentHash, Manifest, WrappedKey};
use tributary_types::{
    Address, AssetId, Hash32,
    limits::{
        KEY_ENVELOPES_PER_ASSET_MAX, KEY_ENVELOPES_PER_DELIVERY_MAX, KEY_REQUEST_LIFETIME_MS_MAX,
    },
};

/// Namespace of an owner's signature on a key delivery.
pub const KEY_DELIVERY_NAMESPACE: &[u8] = b"tributary-key-delivery-v1";

/// Namespace of a reader's signature on a key request.
pub const KEY_REQUEST_NAMESPACE: &[u8] = b"tributary-key-request-v1";

/// The record holding the asset's manifest JSON.
const MANIFEST_RECORD: &str = "manifest";

/// The record holding the asset's envelopes (JSON, reader → wrapped key).
const ENVELOPES_RECORD: &str = "key-envelopes";

/// Generous bound on one envelope's JSON: a quoted address, a colon and a wrapped key's three
/// hex fields with their names.
const ENVELOPE_JSON_BYTES_MAX: usize = 512;

// A delivery with the largest manifest (escaped as a JSON string: at most twice its size) and
// the most envelopes fits the API's body limit; an asset's envelopes fit a store record.
const _: () = assert!(
    2 * tributary_store::limits::MANIFEST_BYTES_MAX
        + KEY_ENVELOPES_PER_DELIVERY_MAX * ENVELOPE_JSON_BYTES_MAX
        + 4 * 1024
        <= tributary_types::limits::API_KEY_DELIVERY_BODY_BYTES_MAX
);
const _: () = assert!(
    KEY_ENVELOPES_PER_ASSET_MAX * ENVELOPE_JSON_BYTES_MAX
        <= tributary_store::limits::RECORD_BYTES_MAX
);

/// An owner's signed delivery of key envelopes for one asset to one provider.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct KeyDelivery {
    /// The asset.
    #[schema(value_type = String)]
    pub asset: AssetId,
    /// The provider it is for (so it cannot be replayed to another).
    #[schema(value_type = String)]
    pub provider: Address,
    /// The signing owner.
    #[schema(value_type = String)]
    pub owner: Address,
    /// The asset's manifest JSON, exactly the bytes whose BLAKE3 the ledger records as its
    /// `manifest_root`. Required until the provider has it (see the envelope listing).
    pub manifest: Option<String>,
    /// The data key wrapped to each reader, by reader address.
    #[schema(value_type = Object)]
    pub envelopes: BTreeMap<Address, WrappedKey>,
    /// Unix time in milliseconds after which the delivery is void (at most
    /// `KEY_REQUEST_LIFETIME_MS_MAX` ahead).
    pub expires_ms: u64,
    /// ed25519 signature over [`KeyDelivery::message`], hex.
    pub signature: String,
}

impl KeyDelivery {
    /// The signed bytes: asset, provider, expiry, the envelope count and each reader with its
    /// envelope in address order. The manifest is not signed: the ledger's root authenticates it.
    pub fn message(
        asset: &AssetId,
        provider: &Address,
        expires_ms: u64,
        envelopes: &BTreeMap<Address, WrappedKey>,
    ) -> Vec<u8> {
        let mut message = Vec::with_capacity(32 + 32 + 8 + 4 + envelopes.len() * (32 + 104));
        message.extend_from_slice(asset.as_bytes());
        message.extend_from_slice(provider.as_bytes());
        message.extend_from_slice(&expires_ms.to_be_bytes());
        message.extend_from_slice(
            &u32::try_from(envelopes.len())
                .unwrap_or(u32::MAX)
                .to_be_bytes(),
        );
        for (reader, wrapped) in envelopes {
            message.extend_from_slice(reader.as_bytes());
            message.extend_from_slice(&wrapped.to_bytes());
        }
        message
    }

    /// A delivery signed by `owner`.
    pub fn sign(
        owner: &ed25519::PrivateKey,
        asset: AssetId,
        provider: Address,
        manifest: Option<String>,
        envelopes: BTreeMap<Address, WrappedKey>,
        expires_ms: u64,
    ) -> Self {
        let message = Self::message(&asset, &provider, expires_ms, &envelopes);
        Self {
            asset,
            provider,
            owner: Address::from_public_key(&owner.public_key()),
            manifest,
            envelopes,
            expires_ms,
            signature: sign_hex(owner, KEY_DELIVERY_NAMESPACE, &message),
        }
    }

    fn verifies(&self, now_ms: u64) -> bool {
        fresh(self.expires_ms, now_ms)
            && signature_verifies(
                &self.owner,
                KEY_DELIVERY_NAMESPACE,
                &Self::message(
                    &self.asset,
                    &self.provider,
                    self.expires_ms,
                    &self.envelopes,
                ),
                &self.signature,
            )
    }
}

/// A reader's signed request for its envelope of one asset.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct KeyRequest {
    /// The asset.
    #[schema(value_type = String)]
    pub asset: AssetId,
    /// The reader (its key verifies the signature).
    #[schema(value_type = String)]
    pub reader: Address,
    /// The provider asked.
    #[schema(value_type = String)]
    pub provider: Address,
    /// Unix time in milliseconds after which the request is void (at most
    /// `KEY_REQUEST_LIFETIME_MS_MAX` ahead).
    pub expires_ms: u64,
    /// ed25519 signature over [`KeyRequest::message`], hex.
    pub signature: String,
}

impl KeyRequest {
    /// The signed bytes: asset, provider and expiry.
    pub fn message(asset: &AssetId, provider: &Address, expires_ms: u64) -> Vec<u8> {
        let mut message = Vec::with_capacity(32 + 32 + 8);
        message.extend_from_slice(asset.as_bytes());
        message.extend_from_slice(provider.as_bytes());
        message.extend_from_slice(&expires_ms.to_be_bytes());
        message
    }

    /// A request signed by `reader`.
    pub fn sign(
        reader: &ed25519::PrivateKey,
        asset: AssetId,
        provider: Address,
        expires_ms: u64,
    ) -> Self {
        let message = Self::message(&asset, &provider, expires_ms);
        Self {
            asset,
            reader: Address::from_public_key(&reader.public_key()),
            provider,
            expires_ms,
            signature: sign_hex(reader, KEY_REQUEST_NAMESPACE, &message),
        }
    }

    fn verifies(&self, now_ms: u64) -> bool {
        fresh(self.expires_ms, now_ms)
            && signature_verifies(
                &self.reader,
                KEY_REQUEST_NAMESPACE,
                &Self::message(&self.asset, &self.provider, self.expires_ms),
                &self.signature,
            )
    }
}

/// Not expired, and not valid for longer than the limit.
fn fresh(expires_ms: u64, now_ms: u64) -> bool {
    now_ms <= expires_ms && expires_ms - now_ms <= KEY_REQUEST_LIFETIME_MS_MAX
}

/// What a reader gets: the manifest and its envelope.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct KeyResponse {
    /// The asset.
    #[schema(value_type = String)]
    pub asset: AssetId,
    /// The manifest JSON (check its BLAKE3 against the ledger's `manifest_root`).
    pub manifest: String,
    /// The data key wrapped to the reader.
    #[schema(value_type = Object)]
    pub envelope: WrappedKey,
}

/// Which readers a provider keeps envelopes for (public: the ledger lists licensees anyway).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct EnvelopeListing {
    /// The asset.
    #[schema(value_type = String)]
    pub asset: AssetId,
    /// Whether the provider has the asset's manifest (a delivery may then leave it out).
    pub manifest_stored: bool,
    /// Readers with an envelope, in address order.
    #[schema(value_type = Vec<String>)]
    pub readers: Vec<Address>,
}

/// What a delivery did.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct DeliveryReceipt {
    /// The asset.
    #[schema(value_type = String)]
    pub asset: AssetId,
    /// Envelopes in this delivery (new or replacing a reader's older one).
    pub stored: usize,
    /// Envelopes the provider now keeps for the asset.
    pub total: usize,
}

impl StorageProvider {
    /// Takes an owner's delivery of key envelopes (see the module docs for the checks).
    pub fn deliver_keys(
        &self,
        delivery: &KeyDelivery,
        now_ms: u64,
    ) -> Result<DeliveryReceipt, ProviderError> {
        let asset = delivery.asset;
        if delivery.provider != self.address || !delivery.verifies(now_ms) {
            return Err(ProviderError::BadSignature(delivery.owner));
        }
        if delivery.envelopes.len() > KEY_ENVELOPES_PER_DELIVERY_MAX {
            return Err(ProviderError::TooManyEnvelopes {
                asset,
                count: delivery.envelopes.len(),
                max: KEY_ENVELOPES_PER_DELIVERY_MAX,
            });
        }
        if let Some(reader) = delivery
            .envelopes
            .keys()
            .find(|reader| reader.public_key().is_err())
        {
            return Err(ProviderError::InvalidEnvelope {
                reader: *reader,
                reason: "the address is not an ed25519 public key, so no one can open it".into(),
            });
        }
        let owner = self.chain.asset(&asset)?.is_some_and(|view| {
            view.owners
                .iter()
                .any(|owner| owner.address == delivery.owner)
        });
        let layout = self.chain.storage_layout(&asset)?;
        let deals = self.chain.provider_deals(&self.address)?;
        if !owner {
            return Err(ProviderError::NotOwner {
                signer: delivery.owner,
                asset,
            });
        }
        let layout = layout.ok_or(ProviderError::NotStored(asset))?;
        let store_id = ContentHash(asset.0);
        let mut held = false;
        for deal in deals.iter().filter(|deal| deal.asset == asset) {
            if self
                .store
                .contains(&store_id, u32::from(deal.shard_index))?
            {
                held = true;
                break;
            }
        }
        if !held {
            return Err(ProviderError::AssetNotHeld(asset));
        }
        if let Some(manifest) = &delivery.manifest {
            check_manifest(&asset, manifest, &layout.manifest_root)?;
        }

        let _guard = self.envelopes.lock().unwrap_or_else(|p| p.into_inner());
        let stored_manifest = self.stored_manifest(&asset, &layout.manifest_root)?;
        match (&stored_manifest, &delivery.manifest) {
            (Some(_), _) => {}
            (None, Some(manifest)) => {
                self.store
                    .put_record(&store_id, MANIFEST_RECORD, manifest.as_bytes())?;
            }
            (None, None) => return Err(ProviderError::ManifestRequired(asset)),
        }
        let mut envelopes = self.stored_envelopes(&asset)?;
        envelopes.extend(
            delivery
                .envelopes
                .iter()
                .map(|(reader, wrapped)| (*reader, wrapped.clone())),
        );
        let mut pruned = 0usize;
        if envelopes.len() > KEY_ENVELOPES_PER_ASSET_MAX {
            // Full: make room by dropping the envelopes of readers the ledger no longer lets
            // read (expired licenses, former co-owners), which could not be served anyway; the
            // owner's agent delivers again to a reader whose license is renewed. This
            // delivery's own readers stay. Asked only when full, so a delivery normally costs
            // no ledger lookups per stored reader.
            let stored: Vec<Address> = envelopes
                .keys()
                .filter(|reader| !delivery.envelopes.contains_key(reader))
                .copied()
                .collect();
            for reader in stored {
                if !self.chain.may_read(&reader, &asset)? {
                    envelopes.remove(&reader);
                    pruned += 1;
                }
            }
        }
        if envelopes.len() > KEY_ENVELOPES_PER_ASSET_MAX {
            return Err(ProviderError::TooManyEnvelopes {
                asset,
                count: envelopes.len(),
                max: KEY_ENVELOPES_PER_ASSET_MAX,
            });
        }
        let bytes =
            serde_json::to_vec(&envelopes).map_err(|error| ProviderError::RecordDamaged {
                what: "key envelopes",
                asset,
                reason: error.to_string(),
            })?;
        self.store.put_record(&store_id, ENVELOPES_RECORD, &bytes)?;
        tracing::info!(
            target: "tributary::provider",
            provider = %self.address,
            %asset,
            owner = %delivery.owner,
            stored = delivery.envelopes.len(),
            pruned,
            total = envelopes.len(),
            "stored key envelopes"
        );
        Ok(DeliveryReceipt {
            asset,
            stored: delivery.envelopes.len(),
            total: envelopes.len(),
        })
    }

    /// Hands a reader the ledger allows its envelope and the asset's manifest.
    pub fn key(&self, request: &KeyRequest, now_ms: u64) -> Result<KeyResponse, ProviderError> {
        let asset = request.asset;
        if request.provider != self.address || !request.verifies(now_ms) {
            return Err(ProviderError::BadSignature(request.reader));
        }
        if !self.chain.may_read(&request.reader, &asset)? {
            return Err(ProviderError::NotAuthorised {
                reader: request.reader,
                asset,
            });
        }
        let layout = self
            .chain
            .storage_layout(&asset)?
            .ok_or(ProviderError::NotStored(asset))?;
        let no_envelope = || ProviderError::NoEnvelope {
            reader: request.reader,
            asset,
        };
        let _guard = self.envelopes.lock().unwrap_or_else(|p| p.into_inner());
        let envelope = self
            .stored_envelopes(&asset)?
            .remove(&request.reader)
            .ok_or_else(no_envelope)?;
        let manifest = self
            .stored_manifest(&asset, &layout.manifest_root)?
            .ok_or_else(no_envelope)?;
        Ok(KeyResponse {
            asset,
            manifest,
            envelope,
        })
    }

    /// The readers this provider keeps envelopes for, and whether it has the manifest.
    pub fn envelope_listing(&self, asset: &AssetId) -> Result<EnvelopeListing, ProviderError> {
        let layout = self
            .chain
            .storage_layout(asset)?
            .ok_or(ProviderError::NotStored(*asset))?;
        let _guard = self.envelopes.lock().unwrap_or_else(|p| p.into_inner());
        Ok(EnvelopeListing {
            asset: *asset,
            manifest_stored: self
                .stored_manifest(asset, &layout.manifest_root)?
                .is_some(),
            readers: self.stored_envelopes(asset)?.into_keys().collect(),
        })
    }

    /// The stored manifest, if any; one that no longer matches the ledger's root is damaged.
    fn stored_manifest(
        &self,
        asset: &AssetId,
        root: &Hash32,
    ) -> Result<Option<String>, ProviderError> {
        let Some(bytes) = self.store.record(&ContentHash(asset.0), MANIFEST_RECORD)? else {
            return Ok(None);
        };
        if Hash32::blake3(&bytes) != *root {
            return Err(ProviderError::RecordDamaged {
                what: "manifest",
                asset: *asset,
                reason: "its BLAKE3 differs from the ledger's manifest root; deliver it again"
                    .into(),
            });
        }
        String::from_utf8(bytes)
            .map(Some)
            .map_err(|error| ProviderError::RecordDamaged {
                what: "manifest",
                asset: *asset,
                reason: error.to_string(),
            })
    }

    fn stored_envelopes(
        &self,
        asset: &AssetId,
    ) -> Result<BTreeMap<Address, WrappedKey>, ProviderError> {
        let Some(bytes) = self.store.record(&ContentHash(asset.0), ENVELOPES_RECORD)? else {
            return Ok(BTreeMap::new());
        };
        serde_json::from_slice(&bytes).map_err(|error| ProviderError::RecordDamaged {
            what: "key envelopes",
            asset: *asset,
            reason: error.to_string(),
        })
    }
}

/// Checks that `manifest` is a valid manifest of `asset` whose BLAKE3 is the ledger's `root`.
fn check_manifest(asset: &AssetId, manifest: &str, root: &Hash32) -> Result<(), ProviderError> {
    let mismatch = |reason: String| ProviderError::ManifestMismatch {
        asset: *asset,
        reason,
    };
    if Hash32::blake3(manifest.as_bytes()) != *root {
        return Err(mismatch(format!(
            "its BLAKE3 differs from the ledger's manifest root {root}"
        )));
    }
    let parsed = Manifest::from_json(manifest).map_err(|error| mismatch(error.to_string()))?;
    if parsed.asset_id.0 != asset.0 {
        return Err(mismatch(format!(
            "it describes asset {}",
            parsed.asset_id.to_hex()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::tests::{
        World, address, chain, key, provider, provider_on, test_asset, world_with_manifest_root,
    };
    use crate::provider::{ChainError, ProviderChain};
    use tributary_chain::ChainState;
    use tributary_store::{DataKey, ShardStore, wrap};
    use tributary_types::{
        AssetView, Call, DealId, DealView, Params, ProviderView, StorageLayout, TxHash,
    };

    const NOW_MS: u64 = 1_000_000;

    /// A manifest for `asset` (the bytes need not be the real ones: only the hash is checked).
    fn manifest_for(asset: &AssetId) -> String {
        let ingested =
            tributary_store::ingest_bytes("data.csv", b"a,b\n1,2\n", &Default::default());
        let mut manifest = ingested.unwrap().manifest;
        manifest.asset_id = ContentHash(asset.0);
        manifest.to_json().unwrap()
    }

    /// The world of the provider tests, with the asset's layout recording `manifest`'s root and
    /// the provider holding shard 0.
    fn stored_world() -> (World, String) {
        let manifest = manifest_for(&test_asset());
        let world = world_with_manifest_root(Hash32::blake3(manifest.as_bytes()));
        assert_eq!(world.asset, test_asset());
        (world, manifest)
    }

    fn hold_shard(directory: &std::path::Path, asset: &AssetId) {
        let shard = crate::provider::tests::SHARD;
        ShardStore::open(directory)
            .and_then(|store| store.put(&ContentHash(asset.0), 0, shard, &ContentHash::of(shard)))
            .unwrap();
    }

    fn envelope_for(seed: u64, data_key: &DataKey) -> (Address, WrappedKey) {
        let public: [u8; 32] = address(seed).0;
        (address(seed), wrap(data_key, &public, b"context").unwrap())
    }

    fn delivery(
        signer: u64,
        asset: AssetId,
        manifest: Option<String>,
        envelopes: BTreeMap<Address, WrappedKey>,
    ) -> KeyDelivery {
        KeyDelivery::sign(
            &key(signer),
            asset,
            address(2),
            manifest,
            envelopes,
            NOW_MS + 60_000,
        )
    }

    /// The ed25519 seed of test key `seed`.
    fn seed_of(seed: u64) -> [u8; 32] {
        commonware_codec::Encode::encode(&key(seed))
            .as_ref()
            .try_into()
            .unwrap()
    }

    fn code<T: std::fmt::Debug>(result: Result<T, ProviderError>) -> &'static str {
        result.unwrap_err().code()
    }

    #[test]
    fn delivers_to_licensees_and_refuses_what_the_ledger_does_not_allow() {
        let (world, manifest) = stored_world();
        let asset = world.asset;
        // The agent learns of licensees by paging license tokens.
        let tokens = world.ledger.licenses(0, 10);
        assert_eq!(tokens.len(), 1);
        assert_eq!((tokens[0].holder, tokens[0].asset), (address(3), asset));
        assert!(world.ledger.licenses(tokens[0].id, 10).is_empty());
        let chain = chain(&world.ledger);
        let directory = tempfile::tempdir().unwrap();
        let data_key = DataKey::generate().unwrap();
        let envelopes: BTreeMap<_, _> = [envelope_for(3, &data_key)].into_iter().collect();
        let request = |seed: u64| KeyRequest::sign(&key(seed), asset, address(2), NOW_MS + 1_000);

        // A provider that holds no shard of the asset takes no envelopes.
        {
            let provider = provider(&chain, directory.path());
            assert_eq!(
                code(provider.deliver_keys(
                    &delivery(1, asset, Some(manifest.clone()), envelopes.clone()),
                    NOW_MS
                )),
                "asset_not_held"
            );
        }
        hold_shard(directory.path(), &asset);
        let provider = provider(&chain, directory.path());
        // Before any delivery the licensee is told to ask the owner's agent.
        let error = provider.key(&request(3), NOW_MS).unwrap_err();
        assert_eq!(error.code(), "no_key_envelope");
        assert!(error.to_string().contains("asset serve-keys"), "{error}");

        // A non-owner (the licensee itself, a stranger) may not deliver.
        for seed in [3, 4] {
            assert_eq!(
                code(provider.deliver_keys(
                    &delivery(seed, asset, Some(manifest.clone()), envelopes.clone()),
                    NOW_MS
                )),
                "not_owner"
            );
        }
        // A forged signature, another provider, an expired or too long-lived delivery.
        let mut forged = delivery(4, asset, Some(manifest.clone()), envelopes.clone());
        forged.owner = address(1);
        assert_eq!(
            code(provider.deliver_keys(&forged, NOW_MS)),
            "bad_signature"
        );
        let mut altered = delivery(1, asset, Some(manifest.clone()), envelopes.clone());
        altered.envelopes = [envelope_for(4, &data_key)].into_iter().collect();
        assert_eq!(
            code(provider.deliver_keys(&altered, NOW_MS)),
            "bad_signature"
        );
        let elsewhere = KeyDelivery::sign(
            &key(1),
            asset,
            address(3),
            Some(manifest.clone()),
            envelopes.clone(),
            NOW_MS + 1,
        );
        assert_eq!(
            code(provider.deliver_keys(&elsewhere, NOW_MS)),
            "bad_signature"
        );
        let valid = delivery(1, asset, Some(manifest.clone()), envelopes.clone());
        assert_eq!(
            code(provider.deliver_keys(&valid, NOW_MS + 60_001)),
            "bad_signature"
        );
        let long_lived = KeyDelivery::sign(
            &key(1),
            asset,
            address(2),
            Some(manifest.clone()),
            envelopes.clone(),
            NOW_MS + KEY_REQUEST_LIFETIME_MS_MAX + 1,
        );
        assert_eq!(
            code(provider.deliver_keys(&long_lived, NOW_MS)),
            "bad_signature"
        );
        // A manifest that is not the ledger's, or none at all for the first delivery.
        let other = manifest_for(&Hash32::blake3(b"another asset"));
        assert_eq!(
            code(
                provider.deliver_keys(&delivery(1, asset, Some(other), envelopes.clone()), NOW_MS)
            ),
            "manifest_mismatch"
        );
        assert_eq!(
            code(provider.deliver_keys(&delivery(1, asset, None, envelopes.clone()), NOW_MS)),
            "manifest_required"
        );
        // An envelope for an address that is no public key.
        // (y = 2 is on no ed25519 point.)
        let mut not_a_key = [0u8; 32];
        not_a_key[0] = 2;
        let mut bad_reader = envelopes.clone();
        bad_reader.insert(Address(not_a_key), envelopes[&address(3)].clone());
        assert_eq!(
            code(provider.deliver_keys(
                &delivery(1, asset, Some(manifest.clone()), bad_reader),
                NOW_MS
            )),
            "invalid_envelope"
        );
        // Nothing refused was stored.
        let listing = provider.envelope_listing(&asset).unwrap();
        assert!(!listing.manifest_stored && listing.readers.is_empty());

        // The owner delivers to the licensee (3) and, by mistake, to a stranger (4).
        let receipt = provider
            .deliver_keys(
                &delivery(
                    1,
                    asset,
                    Some(manifest.clone()),
                    [envelope_for(3, &data_key), envelope_for(4, &data_key)]
                        .into_iter()
                        .collect(),
                ),
                NOW_MS,
            )
            .unwrap();
        assert_eq!((receipt.stored, receipt.total), (2, 2));
        let listing = provider.envelope_listing(&asset).unwrap();
        assert!(listing.manifest_stored);
        assert_eq!(listing.readers.len(), 2);
        // The licensee gets its envelope and the manifest; it opens with its key.
        let response = provider.key(&request(3), NOW_MS).unwrap();
        assert_eq!(response.manifest, manifest);
        let opened = tributary_store::unwrap(&response.envelope, &seed_of(3), b"context").unwrap();
        assert_eq!(opened.as_bytes(), data_key.as_bytes());
        // The stranger holds no license: its envelope is never served.
        assert_eq!(code(provider.key(&request(4), NOW_MS)), "not_authorised");
        // A forged or expired key request is refused.
        let mut forged = request(4);
        forged.reader = address(3);
        assert_eq!(code(provider.key(&forged, NOW_MS)), "bad_signature");
        assert_eq!(
            code(provider.key(&request(3), NOW_MS + 1_001)),
            "bad_signature"
        );
        // The owner reads too once it has delivered itself an envelope; later deliveries may
        // leave the manifest out, and merge by reader.
        assert_eq!(code(provider.key(&request(1), NOW_MS)), "no_key_envelope");
        let receipt = provider
            .deliver_keys(
                &delivery(
                    1,
                    asset,
                    None,
                    [envelope_for(1, &data_key)].into_iter().collect(),
                ),
                NOW_MS,
            )
            .unwrap();
        assert_eq!((receipt.stored, receipt.total), (1, 3));
        assert_eq!(
            provider.key(&request(1), NOW_MS).unwrap().manifest,
            manifest
        );
    }

    #[test]
    fn envelopes_survive_a_restart_and_a_crash_mid_write() {
        let (world, manifest) = stored_world();
        let asset = world.asset;
        let chain = chain(&world.ledger);
        let directory = tempfile::tempdir().unwrap();
        hold_shard(directory.path(), &asset);
        let data_key = DataKey::generate().unwrap();
        {
            let provider = provider(&chain, directory.path());
            provider
                .deliver_keys(
                    &delivery(
                        1,
                        asset,
                        Some(manifest.clone()),
                        [envelope_for(3, &data_key)].into_iter().collect(),
                    ),
                    NOW_MS,
                )
                .unwrap();
        }
        // A crash while the next delivery was being written leaves a partial temporary file.
        let asset_directory = directory.path().join(ContentHash(asset.0).to_hex());
        let leftover = asset_directory.join(".tmp-key-envelopes.record.4242.0");
        std::fs::write(&leftover, b"{\"trib1").unwrap();
        let provider = provider(&chain, directory.path());
        assert!(!leftover.exists());
        let request = KeyRequest::sign(&key(3), asset, address(2), NOW_MS + 1_000);
        let response = provider.key(&request, NOW_MS).unwrap();
        assert_eq!(response.manifest, manifest);
        let opened = tributary_store::unwrap(&response.envelope, &seed_of(3), b"context").unwrap();
        assert_eq!(opened.as_bytes(), data_key.as_bytes());
        // A damaged record is reported as such, not served.
        std::fs::write(asset_directory.join("key-envelopes.record"), b"{not json").unwrap();
        assert_eq!(code(provider.key(&request, NOW_MS)), "record_damaged");
    }

    #[test]
    fn envelope_counts_are_limited_per_delivery_and_per_asset() {
        let (world, manifest) = stored_world();
        let asset = world.asset;
        let chain = chain(&world.ledger);
        let directory = tempfile::tempdir().unwrap();
        hold_shard(directory.path(), &asset);
        let provider = provider(&chain, directory.path());
        let data_key = DataKey::generate().unwrap();
        let wrapped = wrap(&data_key, &address(3).0, b"context").unwrap();
        let many = |from: u64, count: usize| -> BTreeMap<Address, WrappedKey> {
            (from..from + count as u64)
                .map(|seed| (address(1_000 + seed), wrapped.clone()))
                .collect()
        };
        let too_many = many(0, KEY_ENVELOPES_PER_DELIVERY_MAX + 1);
        assert_eq!(
            code(provider.deliver_keys(
                &delivery(1, asset, Some(manifest.clone()), too_many),
                NOW_MS
            )),
            "too_many_envelopes"
        );
        let mut first = true;
        let mut next = 0u64;
        while next < KEY_ENVELOPES_PER_ASSET_MAX as u64 {
            let batch = many(next, KEY_ENVELOPES_PER_DELIVERY_MAX);
            next += KEY_ENVELOPES_PER_DELIVERY_MAX as u64;
            let manifest = first.then(|| manifest.clone());
            first = false;
            provider
                .deliver_keys(&delivery(1, asset, manifest, batch), NOW_MS)
                .unwrap();
        }
        assert_eq!(
            provider.envelope_listing(&asset).unwrap().readers.len(),
            KEY_ENVELOPES_PER_ASSET_MAX
        );
        // Replacing a reader's envelope is fine.
        provider
            .deliver_keys(&delivery(1, asset, None, many(0, 1)), NOW_MS)
            .unwrap();
        // One more reader fits once the readers the ledger does not let read (here every
        // stored one: none holds a license) are dropped; this delivery's reader stays.
        let receipt = provider
            .deliver_keys(&delivery(1, asset, None, many(next, 1)), NOW_MS)
            .unwrap();
        assert_eq!(receipt.total, 1);
        assert_eq!(
            provider.envelope_listing(&asset).unwrap().readers,
            vec![address(1_000 + next)]
        );
    }

    /// The ledger as [`ChainState`] has it, except that everyone may read.
    struct EveryoneReads(ChainState);

    impl ProviderChain for EveryoneReads {
        fn params(&self) -> Result<Params, ChainError> {
            self.0.params()
        }
        fn height(&self) -> Result<u64, ChainError> {
            ProviderChain::height(&self.0)
        }
        fn deal(&self, id: DealId) -> Result<Option<DealView>, ChainError> {
            ProviderChain::deal(&self.0, id)
        }
        fn provider_deals(&self, provider: &Address) -> Result<Vec<DealView>, ChainError> {
            self.0.provider_deals(provider)
        }
        fn failed_deals(&self) -> Result<Vec<DealView>, ChainError> {
            self.0.failed_deals()
        }
        fn asset_deals(&self, asset: &AssetId) -> Result<Vec<DealView>, ChainError> {
            self.0.asset_deals(asset)
        }
        fn provider(&self, address: &Address) -> Result<Option<ProviderView>, ChainError> {
            ProviderChain::provider(&self.0, address)
        }
        fn providers(&self) -> Result<Vec<ProviderView>, ChainError> {
            self.0.providers()
        }
        fn asset(&self, asset: &AssetId) -> Result<Option<AssetView>, ChainError> {
            ProviderChain::asset(&self.0, asset)
        }
        fn storage_layout(&self, asset: &AssetId) -> Result<Option<StorageLayout>, ChainError> {
            self.0.storage_layout(asset)
        }
        fn may_read(&self, _: &Address, _: &AssetId) -> Result<bool, ChainError> {
            Ok(true)
        }
        fn transaction_known(&self, hash: &TxHash) -> Result<bool, ChainError> {
            self.0.transaction_known(hash)
        }
        fn submit(&self, signer: &ed25519::PrivateKey, call: Call) -> Result<TxHash, ChainError> {
            ProviderChain::submit(&self.0, signer, call)
        }
    }

    #[test]
    fn a_full_asset_of_readers_who_may_read_takes_no_new_reader() {
        let (world, manifest) = stored_world();
        let asset = world.asset;
        let directory = tempfile::tempdir().unwrap();
        hold_shard(directory.path(), &asset);
        let provider = provider_on(
            std::sync::Arc::new(EveryoneReads(chain(&world.ledger))),
            directory.path(),
            2,
        );
        let wrapped = wrap(&DataKey::generate().unwrap(), &address(3).0, b"context").unwrap();
        let many = |from: u64, count: usize| -> BTreeMap<Address, WrappedKey> {
            (from..from + count as u64)
                .map(|seed| (address(1_000 + seed), wrapped.clone()))
                .collect()
        };
        let mut next = 0u64;
        while next < KEY_ENVELOPES_PER_ASSET_MAX as u64 {
            let manifest = (next == 0).then(|| manifest.clone());
            provider
                .deliver_keys(
                    &delivery(
                        1,
                        asset,
                        manifest,
                        many(next, KEY_ENVELOPES_PER_DELIVERY_MAX),
                    ),
                    NOW_MS,
                )
                .unwrap();
            next += KEY_ENVELOPES_PER_DELIVERY_MAX as u64;
        }
        assert_eq!(
            code(provider.deliver_keys(&delivery(1, asset, None, many(next, 1)), NOW_MS)),
            "too_many_envelopes"
        );
        assert_eq!(
            provider.envelope_listing(&asset).unwrap().readers.len(),
            KEY_ENVELOPES_PER_ASSET_MAX
        );
    }
}
