"""The Streamlit leaderboard and the robustness maths it shows."""
