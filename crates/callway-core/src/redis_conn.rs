//! Redis connections with bounded timeouts: every command fails fast instead of hanging a request.

use std::time::Duration;

pub type Redis = redis::aio::ConnectionManager;

pub async fn connect(url: &str) -> Result<Redis, redis::RedisError> {
    let client = redis::Client::open(url)?;
    let config = redis::aio::ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(2)))
        .set_response_timeout(Some(Duration::from_secs(2)))
        .set_number_of_retries(2);
    redis::aio::ConnectionManager::new_with_config(client, config).await
}
