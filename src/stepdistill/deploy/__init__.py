"""Ship a trained student: GGUF export, llama.cpp's OpenAI-compatible server, evaluation through any endpoint."""
