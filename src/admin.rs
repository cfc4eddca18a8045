//! RGPD commands: erase a person's leads by phone number, purge leads past the retention period.

use callway_core::lead_store;
use callway_core::phone::PhoneE164;
use callway_core::Settings;

pub async fn delete_lead(settings: &Settings, phone: Option<&str>) -> anyhow::Result<()> {
    let raw = phone.ok_or_else(|| anyhow::anyhow!("usage: callway delete-lead <phone number>"))?;
    let phone = PhoneE164::parse(raw, &settings.phone_policy()?)
        .map_err(|e| anyhow::anyhow!("not a number we could have stored: {e}"))?;
    let store = lead_store::from_settings(settings, true)?;
    let n = store.delete_by_phone(&phone).await?;
    println!("{n} lead(s) deleted for {}", phone.masked());
    Ok(())
}

pub async fn purge_leads(settings: &Settings) -> anyhow::Result<()> {
    let store = lead_store::from_settings(settings, true)?;
    let cutoff =
        chrono::Utc::now() - chrono::Duration::days(settings.callway_lead_retention_days as i64);
    let n = store.purge_before(cutoff).await?;
    println!(
        "{n} lead(s) older than {} days purged",
        settings.callway_lead_retention_days
    );
    Ok(())
}
