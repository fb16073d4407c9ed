"""The Streamlit leaderboard: it shows the boards the gateway computes (the maths is in shiftboard.domain)."""
