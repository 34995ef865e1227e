//! [`Portal`]: the portal's schema, read once per cold start (lazily, on the first delivery that needs
//! it) and kept for a TTL. A schema that cannot be read never blocks a delivery: values pass through
//! as mapped, one warning is logged, and the read is tried again after a back-off.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::Mutex;
use tokio::time::Instant;

use super::PortalSchema;
use crate::credentials::HubSpotAuth;
use crate::hubspot::{AuthSource, Deals, HubSpotApi, HubSpotError, ObjectType};

/// The scopes, any one of which lets a credential read deal pipelines and deal properties: the
/// `security` alternatives of `GET /crm/pipelines/2026-03/{objectType}` and
/// `GET /crm/properties/2026-03/{objectType}` in HubSpot's OpenAPI documents (the v3 ones list the
/// same), narrowed to deals. `crm.objects.deals.write`, which creating deals needs, is among them.
pub const SCHEMA_SCOPES: [&str; 3] = [
    "crm.objects.deals.read",
    "crm.objects.deals.write",
    "crm.schemas.deals.read",
];

/// A read with less time than this left is not tried: the deal needs the time more.
const MIN_READ: Duration = Duration::from_millis(100);

/// How the [`Portal`] reads and keeps the schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortalConfig {
    /// How long a schema read is used before it is read again (default 10 minutes).
    pub ttl: Duration,
    /// A label or option value not found makes the schema be read again (a stage or option added
    /// since), but at most once per this interval since the last read (default 30 s).
    pub reread_interval: Duration,
    /// After a failed read, no read is tried for this long (default 60 s); values pass through.
    pub retry_after_failure: Duration,
    /// Longest a read may take (default 2 s); never more than a quarter of the invocation's time left.
    pub read_timeout: Duration,
}

impl Default for PortalConfig {
    fn default() -> Self {
        PortalConfig {
            ttl: Duration::from_secs(600),
            reread_interval: Duration::from_secs(30),
            retry_after_failure: Duration::from_secs(60),
            read_timeout: Duration::from_secs(2),
        }
    }
}

/// Whether a schema is at hand (see [`Portal::status`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SchemaStatus {
    /// No read was tried yet.
    NotRead,
    /// A schema was read (it may be older than the TTL and stand in for a failed re-read).
    Read,
    /// The last read failed and no schema was ever read: values pass through. Why, for a person.
    Unavailable(String),
}

/// The portal's schema cache: one per App, shared by all invocations. v1 and v3 routes share one
/// schema (read from the v3 paths), 2026-03 routes another (the date-versioned paths).
///
/// Concurrent deliveries wait for one read rather than each reading (a lock per schema, held while
/// reading; a read is short, see [`PortalConfig::read_timeout`]).
#[derive(Debug, Default)]
pub struct Portal {
    config: PortalConfig,
    slots: [Mutex<Slot>; 2],
}

#[derive(Debug, Default)]
struct Slot {
    schema: Option<Arc<PortalSchema>>,
    read_at: Option<Instant>,
    failed_at: Option<Instant>,
    failure: Option<String>,
    /// A warning was logged for the failures since the last successful read.
    warned: bool,
}

impl Portal {
    /// An empty cache; nothing is read until [`Portal::schema`] is first asked.
    pub fn new(config: PortalConfig) -> Portal {
        Portal {
            config,
            slots: Default::default(),
        }
    }

    fn slot(&self, api: HubSpotApi) -> &Mutex<Slot> {
        match api {
            HubSpotApi::V1 | HubSpotApi::V3 => &self.slots[0],
            HubSpotApi::V2026_03 => &self.slots[1],
        }
    }

    /// The schema for `api`'s routes: the cached one within the TTL, else read now (pipelines and deal
    /// properties, with the credential `auth` gives, within [`PortalConfig::read_timeout`] and a quarter
    /// of the time to `deadline`). `None` when no schema could ever be read: the caller sends values as
    /// mapped. A failed re-read keeps the older schema. Failures are logged once until a read succeeds.
    pub async fn schema<A: AuthSource + ?Sized>(
        &self,
        api: HubSpotApi,
        deals: &dyn Deals,
        auth: &A,
        deadline: Option<SystemTime>,
    ) -> Option<Arc<PortalSchema>> {
        let mut slot = self.slot(api).lock().await;
        let now = Instant::now();
        let fresh = slot.read_at.is_some_and(|at| now.duration_since(at) < self.config.ttl);
        let backing_off = slot
            .failed_at
            .is_some_and(|at| now.duration_since(at) < self.config.retry_after_failure);
        if !fresh && !backing_off {
            self.read(api, &mut slot, deals, auth, deadline).await;
        }
        slot.schema.clone()
    }

    /// After `seen` did not know a label or option value: a newer schema, read now unless the last read
    /// was less than [`PortalConfig::reread_interval`] ago or failed within the back-off (then `None`,
    /// and the caller reports what `seen` did not know). A schema another delivery read meanwhile is
    /// returned without reading.
    pub async fn reread<A: AuthSource + ?Sized>(
        &self,
        api: HubSpotApi,
        deals: &dyn Deals,
        auth: &A,
        deadline: Option<SystemTime>,
        seen: &Arc<PortalSchema>,
    ) -> Option<Arc<PortalSchema>> {
        let mut slot = self.slot(api).lock().await;
        if let Some(current) = &slot.schema
            && !Arc::ptr_eq(current, seen)
        {
            return Some(current.clone());
        }
        let now = Instant::now();
        let recent = slot
            .read_at
            .is_some_and(|at| now.duration_since(at) < self.config.reread_interval)
            || slot
                .failed_at
                .is_some_and(|at| now.duration_since(at) < self.config.retry_after_failure);
        if recent || !self.read(api, &mut slot, deals, auth, deadline).await {
            return None;
        }
        slot.schema.clone()
    }

    /// Whether `api`'s routes have a schema, and why not.
    pub async fn status(&self, api: HubSpotApi) -> SchemaStatus {
        let slot = self.slot(api).lock().await;
        match (&slot.schema, &slot.failure) {
            (Some(_), _) => SchemaStatus::Read,
            (None, Some(why)) => SchemaStatus::Unavailable(why.clone()),
            (None, None) => SchemaStatus::NotRead,
        }
    }

    /// One read into `slot`; true when it succeeded.
    async fn read<A: AuthSource + ?Sized>(
        &self,
        api: HubSpotApi,
        slot: &mut Slot,
        deals: &dyn Deals,
        auth: &A,
        deadline: Option<SystemTime>,
    ) -> bool {
        let left = deadline.map(|at| at.duration_since(SystemTime::now()).unwrap_or_default());
        let budget = left.map_or(self.config.read_timeout, |left| self.config.read_timeout.min(left / 4));
        if budget < MIN_READ {
            tracing::debug!(api = %api, "no time left to read the portal's schema; values pass through");
            return false;
        }
        let read = async {
            let auth = auth.hubspot_auth(false).await.map_err(ReadFailure::Credential)?;
            read_schema(deals, api, &auth).await.map_err(ReadFailure::HubSpot)
        };
        let failure = match tokio::time::timeout(budget, read).await {
            Ok(Ok(schema)) => {
                tracing::info!(
                    api = %api,
                    pipelines = schema.pipelines().len(),
                    deal_properties = schema.properties(ObjectType::Deal).map_or(0, <[_]>::len),
                    "read the portal's pipelines and deal properties"
                );
                slot.schema = Some(Arc::new(schema));
                slot.read_at = Some(Instant::now());
                slot.failed_at = None;
                slot.failure = None;
                slot.warned = false;
                return true;
            }
            Ok(Err(failure)) => failure,
            Err(_) => ReadFailure::TimedOut(budget),
        };
        slot.failed_at = Some(Instant::now());
        let why = failure.to_string();
        if !slot.warned {
            slot.warned = true;
            let scopes = match &failure {
                ReadFailure::HubSpot(HubSpotError::MissingScopes { scopes, .. }) => Some(format!(
                    "HubSpot names: {}; any one of {} lets dealhook read them",
                    if scopes.is_empty() {
                        "none".to_owned()
                    } else {
                        scopes.join(", ")
                    },
                    SCHEMA_SCOPES.join(", ")
                )),
                _ => None,
            };
            tracing::warn!(
                api = %api,
                error = %why,
                missing_scopes = scopes,
                retry_in_s = self.config.retry_after_failure.as_secs(),
                "the portal's pipelines and deal properties could not be read: pipeline, stage and option labels \
                 are sent as mapped (not resolved) until a read succeeds"
            );
        }
        slot.failure = Some(why);
        false
    }
}

/// Reads the portal's deal pipelines and deal properties (two `GET`s, concurrently; see
/// [`super::pipelines_request`] and [`super::properties_request`]). One attempt each.
pub async fn read_schema(deals: &dyn Deals, api: HubSpotApi, auth: &HubSpotAuth) -> Result<PortalSchema, HubSpotError> {
    let (pipelines, properties) = tokio::join!(
        deals.pipelines(api, auth),
        deals.properties(api, ObjectType::Deal, auth)
    );
    Ok(PortalSchema::new(pipelines?, properties?))
}

/// Why a read gave no schema (never holds a secret: the credential error is the secret source's
/// sentence, HubSpot's errors are redacted by the client).
#[derive(Debug, thiserror::Error)]
enum ReadFailure {
    #[error("no HubSpot credential: {0}")]
    Credential(String),
    #[error(transparent)]
    HubSpot(HubSpotError),
    #[error("the read took longer than {0:?}")]
    TimedOut(Duration),
}
