//! Text helpers: splitting an answer into stream deltas and the simulator's token estimates.

/// Splits `text` into pieces of one word each, every piece after the first carrying its leading
/// whitespace, so that concatenating the pieces gives back exactly `text`.
pub(crate) fn word_pieces(text: &str) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut start = 0;
    let mut previous_was_word = false;
    for (i, c) in text.char_indices() {
        if c.is_whitespace() && previous_was_word && i > start {
            pieces.push(&text[start..i]);
            start = i;
        }
        previous_was_word = !c.is_whitespace();
    }
    if start < text.len() {
        pieces.push(&text[start..]);
    }
    pieces
}

/// Completion tokens as the simulator counts them: words.
pub(crate) fn completion_tokens(text: &str) -> u64 {
    text.split_whitespace().count() as u64
}

/// Prompt tokens as the simulator counts them: characters / 4, at least 1.
pub(crate) fn prompt_tokens(chars: usize) -> u64 {
    ((chars / 4) as u64).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_pieces_concatenate_back_to_the_text() {
        for text in ["Hello from x.", "  lead", "a  b\nc ", "", "one", "é ü ß"] {
            assert_eq!(word_pieces(text).concat(), text);
        }
    }

    #[test]
    fn each_word_piece_after_the_first_starts_with_its_space() {
        assert_eq!(word_pieces("Hello from x."), vec!["Hello", " from", " x."]);
        assert_eq!(word_pieces("a  b\n"), vec!["a", "  b", "\n"]);
    }

    #[test]
    fn token_estimates_follow_the_documented_rules() {
        assert_eq!(prompt_tokens(0), 1);
        assert_eq!(prompt_tokens(41), 10);
        assert_eq!(completion_tokens("two words"), 2);
        assert_eq!(completion_tokens(""), 0);
    }
}
