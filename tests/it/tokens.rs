//! The signing key behind subscriber links: generated once, kept in the
//! store, the same after a restart, so links in sent emails keep working.

use chrono::Utc;
use tidings::store::Store;
use tidings::tokens::{Purpose, Signer, Unverified};

use crate::helpers::TestStore;

#[tokio::test]
async fn the_signing_key_is_generated_once_and_survives_a_restart() {
    let db = TestStore::new();
    let url = db.url();
    let store = Store::open(url).await.unwrap();
    let key = store.signing_key().await.unwrap();
    assert_eq!(key.len(), 32);
    assert_eq!(
        store.signing_key().await.unwrap(),
        key,
        "not generated twice"
    );
    let now = Utc::now();
    let token = Signer::new(&key).sign(Purpose::Unsubscribe, 3, "ann@example.org", now);
    store.close().await;

    let reopened = Store::open(url).await.unwrap();
    let again = reopened.signing_key().await.unwrap();
    assert_eq!(again, key);
    let parsed = Unverified::parse(&token).unwrap();
    assert!(
        Signer::new(&again)
            .verify(&parsed, Purpose::Unsubscribe, "ann@example.org", now)
            .is_ok()
    );
    reopened.close().await;

    let other_db = TestStore::new();
    let other = Store::open(other_db.url()).await.unwrap();
    assert_ne!(
        other.signing_key().await.unwrap(),
        key,
        "each site has its own key"
    );
}
