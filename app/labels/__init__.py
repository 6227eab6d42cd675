"""Carbon box code (碳箱码) labels: URL signing, QR rendering and printable PDF sheets."""
