//! OpenAI's Responses API (`POST /v1/responses`) as a face on the chat engine: the request is
//! translated into a chat completions request (which then meets the same validation, routing,
//! fallback and rescue as any), the answer — whole or streamed — back into a Response.
//!
//! # What is translated, dropped and refused, field by field
//!
//! The rule (issue 17): translated where chat completions has an equivalent, dropped where it has
//! none and the answer stays the same without it, refused with a 400 naming the field where
//! dropping it would change the answer.
//!
//! **Top-level fields**
//!
//! | field | what happens |
//! |---|---|
//! | `model` | translated: `auto` modes and route names as on chat (empty means `auto`) |
//! | `input` (string or items) | translated into `messages` (items below) |
//! | `instructions` (string) | translated: a leading `system` message (not kept with a stored response, as at OpenAI) |
//! | `tools`, `tool_choice`, `parallel_tool_calls` | translated (tools below); left out when no tool remains |
//! | `max_output_tokens` | translated: `max_tokens` |
//! | `temperature`, `top_p` | translated: the same fields |
//! | `text.format` | translated: `response_format` (`json_object`, `json_schema` with its schema), so only `json` routes serve it |
//! | `text.verbosity` | dropped: a style hint most free upstreams refuse as an unknown parameter |
//! | `reasoning.effort` | translated: `reasoning_effort` (`minimal`→`low`, `xhigh`→`high`, `none`→ the route's default), sent only to routes tagged `reasoning` |
//! | `reasoning.summary` | dropped: reasoning text the route shows comes back as it is |
//! | `stream` | translated; `stream_options.include_usage` is always asked for (usage ends the response) |
//! | `stream_options` | dropped (`include_obfuscation` pads events; nothing to pad) |
//! | `store`, `previous_response_id` | kept in the gateway's store when `storage.responses_retention_hours` > 0; refused (400 naming that setting) otherwise — `store: false` always works |
//! | `include` | dropped: encrypted reasoning, logprobs and search results cannot be produced; the answer is the same |
//! | `prompt_cache_key`, `prompt_cache_retention`, `prompt_cache_options` | dropped: OpenAI's cache hints; upstreams that do not know them may refuse the request |
//! | `metadata` | dropped upstream, echoed in the Response |
//! | `user`, `safety_identifier`, `service_tier`, `client_metadata` | dropped: no effect on the answer |
//! | `truncation` | dropped: a prompt too large for every route gets `context_length_exceeded`, as on chat |
//! | `max_tool_calls`, `top_logprobs`, `context_management` | dropped: they govern hosted tools, logprobs, server compaction |
//! | `background` (true), `conversation`, `prompt`, `moderation` | refused: they need OpenAI-side state or services |
//! | anything else | dropped, as the chat allow-list drops unknown fields |
//!
//! **Tools**: `function` → a chat function (`strict` kept when true); `custom` (freeform, such as
//! Codex's `apply_patch`) → a function with one string parameter `input`, its grammar written into
//! the description, its calls answered as `custom_tool_call` items; `namespace` → its tools
//! flattened (a name that clashes becomes `namespace__name`), calls answered with their
//! `namespace`; `web_search*`, `image_generation`, `tool_search` → dropped (the model answers
//! without them); every other type (`file_search`, `code_interpreter`, `computer*`, `mcp`,
//! `local_shell`, `shell`, `apply_patch`, …) → refused, since the provider would have to run it.
//! `tool_choice`: modes as they are, a named function or custom tool → that chat function,
//! `allowed_tools` → the tool list narrowed, a hosted tool → refused.
//!
//! **Input items**: `message` (or a bare `{role, content}`) → a message of that role, `developer`
//! as `system`; `input_text`/`output_text`/`refusal` parts → text (one string when there is no
//! image), `input_image` with a URL → an image part (user messages only); `input_image` by
//! `file_id`, `input_file`, audio → refused. `function_call` and `custom_tool_call` → tool calls
//! of the assistant turn they follow; `function_call_output` and `custom_tool_call_output` →
//! `tool` messages (images in an output follow the tool turn as a user message). `reasoning`,
//! `web_search_call`, `image_generation_call` → dropped (their content is OpenAI's, encrypted, or
//! already in the answer). `item_reference`, `compaction` and every other type → refused.
//!
//! **The answer**: reasoning text → a `reasoning` item (its text as `reasoning_text` content,
//! never `encrypted_content`); text → a `message` item; tool calls → `function_call` or
//! `custom_tool_call` items; `finish_reason: length` → `incomplete` (`max_output_tokens`); usage
//! renamed. Whole answers also carry `output_text`. Streams: see [`stream`].

pub mod answer;
pub mod input;
pub mod object;
pub mod request;
pub mod stored;
pub mod stream;
pub mod tools;

pub use answer::{Answer, from_completion};
pub use input::ChatMessage;
pub use object::Head;
pub use request::{ResponsesRequest, Translated, response_id};
pub use stream::ResponseStream;

use crate::routing::InvalidRequest;

pub(crate) fn invalid(message: impl Into<String>, param: &str) -> InvalidRequest {
    InvalidRequest {
        message: message.into(),
        param: Some(param.to_string()),
    }
}
