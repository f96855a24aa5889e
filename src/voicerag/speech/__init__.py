"""Speech: audio decoding and encoding, speech to text, text to speech, and voice turns."""
