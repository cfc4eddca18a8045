//! Phone numbers are masked in traces as they are in logs: every exported span passes through
//! [`MaskingExporter`], which rewrites string attributes, event names (tracing's messages) and
//! event attributes with the same scrubber as the log writer. One place for every span, whatever
//! code recorded it.

use crate::mask::mask_phone_numbers;
use opentelemetry::{KeyValue, Value};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use std::borrow::Cow;
use std::time::Duration;

#[derive(Debug)]
pub struct MaskingExporter<E>(pub E);

impl<E: SpanExporter> SpanExporter for MaskingExporter<E> {
    fn export(
        &self,
        mut batch: Vec<SpanData>,
    ) -> impl std::future::Future<Output = OTelSdkResult> + Send {
        for span in &mut batch {
            mask_span(span);
        }
        self.0.export(batch)
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.0.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.0.force_flush()
    }

    fn set_resource(&mut self, resource: &opentelemetry_sdk::Resource) {
        self.0.set_resource(resource)
    }
}

pub fn mask_span(span: &mut SpanData) {
    mask_attributes(&mut span.attributes);
    for event in span.events.events.iter_mut() {
        if let Cow::Owned(masked) = mask_phone_numbers(&event.name) {
            event.name = masked.into();
        }
        mask_attributes(&mut event.attributes);
    }
}

fn mask_attributes(attributes: &mut [KeyValue]) {
    for kv in attributes {
        if let Value::String(s) = &kv.value {
            if let Cow::Owned(masked) = mask_phone_numbers(s.as_str()) {
                kv.value = Value::String(masked.into());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::{SpanContext, SpanId, SpanKind, Status};
    use opentelemetry_sdk::trace::{SpanEvents, SpanLinks};

    #[test]
    fn numbers_in_attributes_and_messages_are_masked_before_export() {
        let mut events = SpanEvents::default();
        events.events.push(opentelemetry::trace::Event::new(
            "OpenAI closed: rappelez le 06 12 34 56 78",
            std::time::SystemTime::now(),
            vec![KeyValue::new("detail", "+33612345678")],
            0,
        ));
        let mut span = SpanData {
            span_context: SpanContext::empty_context(),
            parent_span_id: SpanId::INVALID,
            parent_span_is_remote: false,
            span_kind: SpanKind::Internal,
            name: "bridge.call".into(),
            start_time: std::time::SystemTime::now(),
            end_time: std::time::SystemTime::now(),
            attributes: vec![
                KeyValue::new("callway.end", "said 0612345678"),
                KeyValue::new("callway.voice_to_voice_ms", 412_i64),
            ],
            dropped_attributes_count: 0,
            events,
            links: SpanLinks::default(),
            status: Status::Unset,
            instrumentation_scope: Default::default(),
        };
        mask_span(&mut span);
        let text = format!("{:?}", span);
        for clear in ["12 34 56", "612345678"] {
            assert!(!text.contains(clear), "{text}");
        }
        assert_eq!(span.attributes[1].value, Value::I64(412));
    }
}
