//! HubSpot client (stub).
/// stub
pub struct HubSpotClient;
/// stub
pub struct HubSpotClientConfig;
