"""One APIView per operation (STYLE.md §2): parse the input, call one service or selector, respond."""
