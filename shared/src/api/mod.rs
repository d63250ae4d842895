//! The translating faces above routing: each client API besides chat completions is translated
//! into a chat request for the engine, and the engine's answers (whole or streamed) back into that
//! API's shapes. Routing never learns these shapes; these modules never route.

pub mod anthropic;
