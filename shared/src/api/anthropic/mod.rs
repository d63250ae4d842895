//! Anthropic's Messages API (`POST /v1/messages`, `/v1/messages/count_tokens`, the model list) as
//! a face on the chat engine: a Messages body becomes a chat completions body, and the engine's
//! answer — a completion, or a stream already rescued where it broke — becomes a message or
//! Anthropic's event stream. Ranking, quota, fallback and rescue happen in the engine, unchanged.
//!
//! Each field is **translated** where chat completions has an equivalent, **dropped** where it has
//! none and the answer does not depend on it, and **refused** (400 `invalid_request_error`, naming
//! the field) only where dropping it would change the answer.
//!
//! # Request
//!
//! | field | what happens |
//! |---|---|
//! | `model` | translated. `auto`, `auto-fast`, `auto-balanced` and route names as on chat; a `claude-*` name goes through `[anthropic] models` (an equal key, else the longest key the name contains: `haiku` → `auto-fast` by default), else `auto`; a Claude name is never strict. Absent: `auto` |
//! | `max_tokens` | translated to `max_tokens` (optional here; Anthropic requires it) |
//! | `messages` | translated (blocks below); roles other than `user`/`assistant` refused |
//! | `system` | translated: a string or text blocks (joined by a blank line) as the first, `system`, message |
//! | `stream` | translated, with `stream_options.include_usage` so the final usage can be reported |
//! | `temperature`, `top_p` | translated as they are |
//! | `top_k` | dropped (no chat completions equivalent; a sampling detail) |
//! | `stop_sequences` | translated to `stop` |
//! | `tools` | custom tools translated to function tools (`input_schema` → `parameters`, copied as sent; `cache_control`, `strict`, `input_examples`, `defer_loading` dropped). Anthropic's own tool types (`web_search_*`, `code_execution_*`, `bash_*`, `text_editor_*`, `computer_*`, `web_fetch_*`, `memory_*`, …) refused: no chat route runs them |
//! | `tool_choice` | translated: `auto` → `auto`, `any` → `required`, `tool` → that function, `none` → `none`; `disable_parallel_tool_use: true` → `parallel_tool_calls: false`. Dropped when there are no tools (chat completions refuses it then) |
//! | `metadata.user_id` | translated to `user` |
//! | `output_config.format` | `json_schema` translated to `response_format` (so only `json` routes serve it); other types refused |
//! | `output_config.effort`, `thinking` | translated to `reasoning_effort`, which reaches only routes tagged `reasoning`: `effort` `low`/`medium` as they are, `high`/`xhigh`/`max` → `high`; else an `enabled` budget of ≤ 4,096 tokens → `low`, ≤ 16,384 → `medium`, more → `high`. `adaptive` or `disabled` thinking: each route's default |
//! | `cache_control` (top level, and on any block or tool) | dropped: free tiers cache on their own, or not at all |
//! | `mcp_servers` | refused when not empty (Anthropic connects them; the model would miss their tools) |
//! | `container`, `context_management`, `service_tier`, `inference_geo`, `speed`, `diagnostics`, any other field | dropped |
//! | headers `anthropic-version`, `anthropic-beta` | accepted, whatever their values; auth by `x-api-key` or Bearer, as on every `/v1/*` route |
//!
//! # Content blocks
//!
//! | block | what happens |
//! |---|---|
//! | `text` | translated to text (`citations` dropped); a turn of text only becomes one string |
//! | `image` | `base64` or `url` source translated to an `image_url` part (so only `vision` routes serve it); a `file` source refused |
//! | `document` | a `text` or `content` source translated to text (its `title` first); PDF, `url` and `file` sources refused |
//! | `tool_use` (assistant) | translated to a `tool_calls` entry (`id` kept, `input` as the arguments' JSON text) |
//! | `tool_result` (user) | translated to a `tool` message placed before the turn's other blocks; text blocks joined; `is_error: true` prefixes the text with `Error: `; images in it follow in a user message |
//! | `thinking`, `redacted_thinking` | dropped (a signature only Anthropic can check, a reasoning no other model can resume); an assistant turn of only thinking is left out |
//! | `server_tool_use`, `web_search_tool_result`, `search_result`, `container_upload`, any other type | refused, naming `messages[i].content[j].type` |
//!
//! # Answer
//!
//! | chat completion | message |
//! |---|---|
//! | `message.content` | a `text` block |
//! | `message.tool_calls` | `tool_use` blocks (the upstream's id, or a new `toolu_…`; arguments that are not an object come as `{"arguments": text}`) |
//! | reasoning (`reasoning_content`, `reasoning`) | dropped: a `thinking` block needs a signature only Anthropic can make |
//! | `finish_reason` | `stop` → `end_turn` (or `stop_sequence`, with the sequence, where the upstream says which one matched), `length` → `max_tokens`, `tool_calls` → `tool_use` (also a `stop` after tool calls), `content_filter` → `refusal` |
//! | `usage` | `prompt_tokens` less cached → `input_tokens`, cached → `cache_read_input_tokens`, `completion_tokens` → `output_tokens` |
//! | `id`, `model` | `msg_` + the gateway's request id; the model the upstream says answered |
//!
//! Streams: `message_start` (with the gateway's prompt estimate as `input_tokens`), a `ping`, the
//! blocks as above with `text_delta` and `input_json_delta` (tool input as the upstream streams
//! it), `message_delta` with `stop_reason` and the upstream's usage, `message_stop`. When the
//! engine cannot continue a cut stream, an `error` event ends it, never `message_stop`.
//!
//! Errors: Anthropic's shape `{"type":"error","error":{"type","message"},"request_id"}` with the
//! status kept: 400 `invalid_request_error`, 401 `authentication_error`, 403 `permission_error`,
//! 404 `not_found_error`, 413 `request_too_large`, 429 `rate_limit_error` (with `retry-after`),
//! 500/502 `api_error`, 503/529 `overloaded_error`, 408/504 `timeout_error`.

mod chat;
mod content;
mod count;
mod error;
mod models;
mod read;
mod request;
mod response;
mod stream;
mod tools;

#[cfg(test)]
mod tests;

pub use count::count_tokens;
pub use error::{InvalidMessages, error_body, error_type, from_openai_error};
pub use models::{ListedModel, ResolvedModel, model_list, resolve_model};
pub use request::{Asked, Translated, translate_request};
pub use response::{UntranslatableAnswer, to_message};
pub use stream::StreamTranslator;
