int udax_placeholder_media;
