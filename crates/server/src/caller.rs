//! Who is asking, once `http/` has authenticated them: what services are handed.

use stepgate_store::SessionRecord;

use crate::tokens::AccessClaims;

/// An end user: a valid access token whose session is still live.
pub struct UserCaller {
    pub claims: AccessClaims,
    pub session: SessionRecord,
}
