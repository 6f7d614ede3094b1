"""Report generators: each writes one committed report under reports/ and names the command that regenerates it."""
