//! What the agents say and promise. The consent wording is versioned: the version is stored with
//! every lead, so we can prove what the visitor agreed to.

/// Version of [`CONSENT_WORDING`]. Change both together.
pub const CONSENT_VERSION: &str = "2026-11-v1";

/// The consent question the web agent reads out before collecting any personal data.
pub const CONSENT_WORDING: &str = "Acceptez-vous que Callway enregistre votre prénom, votre nom et votre numéro de téléphone, \
ainsi qu'un résumé de notre échange, pour vous rappeler maintenant par téléphone avec un agent IA ? \
Ces données sont conservées 30 jours au plus et vous pouvez demander leur suppression à tout moment.";
