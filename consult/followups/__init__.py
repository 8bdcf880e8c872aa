""" "Ask the doctor": follow-up questions after a finished consultation, and their answers."""
