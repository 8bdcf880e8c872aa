"""Medical documents: uploads judged by content, stored outside the web root, shared into chats."""
