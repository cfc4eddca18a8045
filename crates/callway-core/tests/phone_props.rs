//! Property tests (proptest) of `PhoneE164`, the parser every visitor-given number goes
//! through: no input panics; what it accepts is E.164 in an allowed country, re-parses to
//! itself, is rebuilt from storage, and never prints unmasked. Bounded case counts (see
//! documentations.md for timings).

use callway_core::mask::mask_phone_numbers;
use callway_core::phone::{is_e164_shape, mask_e164, PhoneE164, PhonePolicy};
use proptest::prelude::*;

fn policy() -> PhonePolicy {
    PhonePolicy::from_codes("FR", "FR,BE,CH,DE,ES,IT,GB,LU").expect("valid codes")
}

/// What visitors type and what transcription produces, plus noise.
fn phone_input() -> impl Strategy<Value = String> {
    prop_oneof![
        // Anything at all, including long and non-ASCII input.
        ".{0,80}",
        // Phone-ish characters in any order.
        "[0-9 +().\\-/\u{a0}]{0,30}",
        // French numbers in their usual spellings.
        "0[1-9]([ .\\-]?[0-9]{2}){4}",
        "\\+33 ?\\(0\\)?[1-9]([ .]?[0-9]{2}){4}",
        "00[1-9][0-9]{6,14}",
        "\\+[1-9][0-9]{1,16}",
        // Words a transcription may leave around digits.
        "(zéro|six|plus|\\+)? ?[0-9]{2}( [0-9]{2}){0,6}( euh)?",
    ]
}

/// Cases per property (each parse runs the libphonenumber metadata, slow in debug builds).
const CASES: u32 = 2500;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn any_input_is_a_number_or_a_reason_never_a_panic(raw in phone_input()) {
        let p = policy();
        match PhoneE164::parse(&raw, &p) {
            Ok(n) => {
                let e164 = n.as_e164();
                prop_assert!(is_e164_shape(e164), "{}", e164);
                prop_assert!(p.allowed_countries.contains(&n.country()));
                // Stable: the E.164 form parses to itself.
                let again = PhoneE164::parse(e164, &p).expect("E.164 re-parses");
                prop_assert_eq!(again.as_e164(), e164);
                // Rebuilt from storage as it was saved.
                let stored = PhoneE164::from_stored(e164, n.raw()).expect("stored form");
                prop_assert_eq!(stored.as_e164(), e164);
                // Printing it never shows the middle digits.
                let middle = &e164[4..e164.len() - 2];
                for shown in [format!("{n}"), format!("{n:?}"), n.masked()] {
                    prop_assert!(!shown.contains(middle), "{} shows {}", shown, middle);
                }
            }
            Err(e) => {
                prop_assert!(!e.code().is_empty());
                prop_assert!(!e.message_fr().is_empty());
            }
        }
    }

    #[test]
    fn masking_and_storage_helpers_take_any_text(s in ".{0,60}") {
        let _ = mask_e164(&s);
        let _ = is_e164_shape(&s);
        let _ = PhoneE164::from_stored(&s, &s);
        let _ = mask_phone_numbers(&s);
    }

    /// The log scrubber hides any E.164 number it is given, however it is embedded.
    #[test]
    fn the_log_scrubber_hides_every_e164_number(
        digits in "[1-9][0-9]{7,13}",
        before in "([a-z]{0,8}[ =:\"])?",
        after in "([ ,\"][a-z]{0,8})?",
    ) {
        let plus = format!("{before}+{digits}{after}");
        let masked = mask_phone_numbers(&plus);
        prop_assert!(!masked.contains(&digits[2..digits.len() - 2]), "{}", masked);
        let quoted = format!("invalid type: integer `{digits}`, expected a string");
        let masked = mask_phone_numbers(&quoted);
        prop_assert!(!masked.contains(&digits[2..digits.len() - 2]), "{}", masked);
    }
}
