//! A subscriber import file through the import's reading and checking of
//! each row (everything but the store): rows are named by a line of the
//! file, in order, and what is accepted is a valid subscriber.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tidings::fuzzing;

fuzz_target!(|data: &[u8]| {
    let Ok(rows) = fuzzing::csv_rows(data) else {
        return;
    };
    // The reader counts LFs (a lone CR ends a record on the same line).
    let lines = data.iter().filter(|&&b| b == b'\n').count() as u64 + 1;
    let mut last = 1;
    for (line, row) in rows {
        assert!(line >= last, "line {line} after {last}");
        assert!(line <= lines, "line {line} of {lines}");
        last = line;
        match row {
            Ok(person) => {
                assert!(!person.themes.is_empty());
                assert!(person.email.as_str().len() <= 254);
            }
            Err(problem) => assert_eq!(problem.line, Some(line as usize)),
        }
    }
});
