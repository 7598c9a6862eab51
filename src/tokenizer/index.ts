// Tokenizer and chat templates: the public surface (see tokenizer.ts for the API notes).
export { Tokenizer, StreamDecoder, type TokenizerSpec, type EncodeOptions, type DecodeOptions } from './tokenizer.js';
export { loadTokenizer } from './load.js';
export { renderChat, applyChatTemplate, chatTemplateFor, CHATML_TEMPLATE, type RenderOptions } from './chat_template.js';
export { tokenizerFromGgufMetadata, tokenizerFromGgufFile, ggufTokenizerMetadata, TokenType } from './gguf_vocab.js';
export type { AddedToken } from './added_tokens.js';
