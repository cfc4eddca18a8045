//! The conversation: items, and the `conversation.item.*` client events.

use super::{Engine, Rejection};
use crate::errors::FieldError;
use crate::ids::new_id;
use crate::validate::{self as v, join};
use serde_json::{json, Value};

#[derive(Debug, Clone)]
struct ConvItem {
    value: Value,
    /// Assistant audio sent for this item (ms).
    audio_ms: u64,
}

/// Items in order.
#[derive(Debug, Default)]
pub(crate) struct Conversation {
    items: Vec<ConvItem>,
}

impl Conversation {
    pub(crate) fn last_id(&self) -> Value {
        self.items
            .last()
            .map(|i| i.value["id"].clone())
            .unwrap_or(Value::Null)
    }

    pub(crate) fn push(&mut self, item: Value) {
        self.items.push(ConvItem {
            value: item,
            audio_ms: 0,
        });
    }

    fn position(&self, id: &str) -> Option<usize> {
        self.items.iter().position(|i| i.value["id"] == id)
    }

    pub(crate) fn get(&self, id: &str) -> Option<&Value> {
        self.position(id).map(|p| &self.items[p].value)
    }

    pub(crate) fn replace(&mut self, item: Value) {
        if let Some(id) = item["id"].as_str() {
            if let Some(p) = self.position(id) {
                self.items[p].value = item;
            }
        }
    }

    pub(crate) fn add_audio(&mut self, id: &str, ms: u64) {
        if let Some(p) = self.position(id) {
            self.items[p].audio_ms += ms;
        }
    }

    pub(crate) fn audio_ms(&self, id: &str) -> u64 {
        self.position(id)
            .map(|p| self.items[p].audio_ms)
            .unwrap_or(0)
    }

    pub(crate) fn set_user_transcript(&mut self, id: &str, transcript: &str) {
        if let Some(p) = self.position(id) {
            self.items[p].value["content"][0]["transcript"] = json!(transcript);
        }
    }

    fn has_function_call(&self, call_id: &str) -> bool {
        self.items
            .iter()
            .any(|i| i.value["type"] == "function_call" && i.value["call_id"] == call_id)
    }
}

fn not_found(id: &str, param: &str) -> FieldError {
    FieldError::new(
        "item_not_found",
        format!("Conversation item with id '{id}' does not exist."),
        Some(param),
    )
}

/// Validates a client-created item and fills server fields.
fn validate_item(val: &Value) -> Result<Value, FieldError> {
    let o = v::object(val, "item")?;
    let t = v::one_of(
        v::required(o, "type", "item")?,
        "item.type",
        &["message", "function_call", "function_call_output"],
    )?;
    let common = ["id", "type", "object", "status"];
    let extra: &[&str] = match t.as_str() {
        "message" => &["role", "content"],
        "function_call" => &["call_id", "name", "arguments"],
        _ => &["call_id", "output"],
    };
    let allowed: Vec<&str> = common.iter().chain(extra.iter()).copied().collect();
    v::known_keys(o, &allowed, "item")?;
    if let Some(id) = o.get("id") {
        let id = v::string(id, "item.id")?;
        if id.len() > 32 {
            return Err(FieldError::new(
                "string_above_max_length",
                format!("Invalid 'item.id': string too long. Expected a string with maximum length 32, but got a string with length {} instead.", id.len()),
                Some("item.id"),
            ));
        }
    }
    if let Some(s) = o.get("object") {
        v::one_of(s, "item.object", &["realtime.item"])?;
    }
    if let Some(s) = o.get("status") {
        v::one_of(
            s,
            "item.status",
            &["completed", "incomplete", "in_progress"],
        )?;
    }
    match t.as_str() {
        "message" => {
            let role = v::one_of(
                v::required(o, "role", "item")?,
                "item.role",
                &["user", "assistant", "system"],
            )?;
            let content = v::array(v::required(o, "content", "item")?, "item.content")?;
            let kinds: &[&str] = match role.as_str() {
                "user" => &["input_text", "input_audio", "input_image"],
                "system" => &["input_text"],
                _ => &["output_text", "output_audio"],
            };
            for (i, part) in content.iter().enumerate() {
                let p = format!("item.content[{i}]");
                let po = v::object(part, &p)?;
                let pt = v::one_of(v::required(po, "type", &p)?, &join(&p, "type"), kinds)?;
                let keys: &[&str] = match pt.as_str() {
                    "input_text" | "output_text" => &["type", "text"],
                    "input_audio" => &["type", "audio", "transcript"],
                    "input_image" => &["type", "image_url", "detail"],
                    _ => &["type", "audio", "transcript"],
                };
                v::known_keys(po, keys, &p)?;
                if pt == "output_audio" {
                    return Err(FieldError::new(
                        "invalid_value",
                        "Assistant audio items cannot be created by the client; use 'output_text'.",
                        Some(&join(&p, "type")),
                    ));
                }
                if pt.ends_with("_text") {
                    v::string(v::required(po, "text", &p)?, &join(&p, "text"))?;
                }
                if pt == "input_image" {
                    let url = v::string(v::required(po, "image_url", &p)?, &join(&p, "image_url"))?;
                    if !(url.starts_with("data:image/png;base64,")
                        || url.starts_with("data:image/jpeg;base64,"))
                    {
                        return Err(FieldError::new(
                            "invalid_value",
                            "Invalid 'image_url': expected a PNG or JPEG data URI.",
                            Some(&join(&p, "image_url")),
                        ));
                    }
                }
            }
        }
        "function_call" => {
            v::string(v::required(o, "call_id", "item")?, "item.call_id")?;
            v::string(v::required(o, "name", "item")?, "item.name")?;
            v::string(v::required(o, "arguments", "item")?, "item.arguments")?;
        }
        _ => {
            v::string(v::required(o, "call_id", "item")?, "item.call_id")?;
            v::string(v::required(o, "output", "item")?, "item.output")?;
        }
    }
    let mut item = val.clone();
    if item.get("id").is_none() {
        item["id"] = json!(new_id("item_"));
    }
    item["object"] = json!("realtime.item");
    item["status"] = json!("completed");
    Ok(item)
}

impl Engine {
    pub(super) fn on_item_create(&mut self, obj: &v::Obj) -> Result<(), Rejection> {
        let item = validate_item(v::required(obj, "item", "")?)?;
        let id = item["id"].as_str().unwrap_or_default().to_string();
        if self.conv.get(&id).is_some() {
            return Err(FieldError::new(
                "invalid_value",
                format!("Item with id '{id}' already exists."),
                Some("item.id"),
            )
            .into());
        }
        let previous = match obj.get("previous_item_id") {
            None | Some(Value::Null) => self.conv.last_id(),
            Some(p) => {
                let p = v::string(p, "previous_item_id")?;
                if p != "root" && self.conv.get(p).is_none() {
                    return Err(not_found(p, "previous_item_id").into());
                }
                json!(p)
            }
        };
        if item["type"] == "function_call_output" {
            let call_id = item["call_id"].as_str().unwrap_or_default().to_string();
            if !self.conv.has_function_call(&call_id) {
                return Err(FieldError::new(
                    "invalid_value",
                    format!("Tool call ID '{call_id}' not found in conversation."),
                    Some("item.call_id"),
                )
                .into());
            }
            let output = item["output"].as_str().unwrap_or_default().to_string();
            self.last_tool_output = serde_json::from_str(&output).ok();
            self.record
                .update(|r| r.tool_outputs.push((call_id, output)));
            self.pending_tool_output = true;
        } else if item["type"] == "message" && item["role"] == "user" {
            // Text the client replays before the first response (an earlier conversation) is
            // context: the first response is still the session's opening step.
            if self.responses_started > 0 {
                self.pending_user_turn = true;
            }
            self.user_turns += 1;
        } else if item["type"] == "message"
            && item["role"] == "system"
            && self.responses_started > 0
        {
            // A notice the client adds mid-call (e.g. a transfer that failed): the next
            // response answers it.
            self.pending_notice = true;
        }
        self.conv.push(item.clone());
        self.emit(
            "conversation.item.added",
            json!({"previous_item_id": previous, "item": item}),
        );
        self.emit(
            "conversation.item.done",
            json!({"previous_item_id": previous, "item": item}),
        );
        Ok(())
    }

    pub(super) fn on_item_retrieve(&mut self, obj: &v::Obj) -> Result<(), Rejection> {
        let id = v::string(v::required(obj, "item_id", "")?, "item_id")?;
        let item = self
            .conv
            .get(id)
            .cloned()
            .ok_or_else(|| not_found(id, "item_id"))?;
        self.emit("conversation.item.retrieved", json!({ "item": item }));
        Ok(())
    }

    pub(super) fn on_item_delete(&mut self, obj: &v::Obj) -> Result<(), Rejection> {
        let id = v::string(v::required(obj, "item_id", "")?, "item_id")?.to_string();
        let pos = self
            .conv
            .position(&id)
            .ok_or_else(|| not_found(&id, "item_id"))?;
        self.conv.items.remove(pos);
        self.emit("conversation.item.deleted", json!({ "item_id": id }));
        Ok(())
    }

    pub(super) fn on_item_truncate(&mut self, obj: &v::Obj) -> Result<(), Rejection> {
        let id = v::string(v::required(obj, "item_id", "")?, "item_id")?.to_string();
        let content_index = v::integer(
            v::required(obj, "content_index", "")?,
            "content_index",
            0,
            i64::MAX,
        )?;
        let end = v::integer(
            v::required(obj, "audio_end_ms", "")?,
            "audio_end_ms",
            0,
            i64::MAX,
        )? as u64;
        let item = self
            .conv
            .get(&id)
            .cloned()
            .ok_or_else(|| not_found(&id, "item_id"))?;
        if item["type"] != "message" || item["role"] != "assistant" {
            return Err(FieldError::new(
                "invalid_value",
                "Only assistant messages can be truncated.",
                Some("item_id"),
            )
            .into());
        }
        if content_index != 0 {
            return Err(FieldError::new("invalid_value", format!("Invalid 'content_index': item '{id}' has no content part {content_index} with audio."), Some("content_index")).into());
        }
        self.truncate_item(&id, end)?;
        self.emit(
            "conversation.item.truncated",
            json!({"item_id": id, "content_index": 0, "audio_end_ms": end}),
        );
        Ok(())
    }

    /// Cuts an assistant item's audio (and its transcript, proportionally) at `end_ms`.
    pub(super) fn truncate_item(&mut self, id: &str, end_ms: u64) -> Result<(), FieldError> {
        let have = self.conv.audio_ms(id);
        if end_ms > have {
            return Err(FieldError::new(
                "invalid_value",
                format!("Audio content of {have}ms is already shorter than {end_ms}ms"),
                Some("audio_end_ms"),
            ));
        }
        if let Some(p) = self.conv.position(id) {
            let total = self.response_line_ms(id).unwrap_or(have).max(1);
            let entry = &mut self.conv.items[p];
            entry.audio_ms = end_ms;
            if let Some(t) = entry.value["content"][0]["transcript"].as_str() {
                let keep = (t.chars().count() as u64 * end_ms / total) as usize;
                let cut: String = t.chars().take(keep).collect();
                entry.value["content"][0]["transcript"] = json!(cut);
            }
        }
        self.stop_item_generation(id);
        Ok(())
    }
}
