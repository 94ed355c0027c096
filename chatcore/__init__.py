"""chatcore: the logic of a private, local chat app. It never imports streamlit."""
