//! The PDF of a card: one page per side, each exactly CR80, the side drawn by svg2pdf as a form
//! XObject stretched over the page. svg2pdf alone writes one page per document, so its chunks
//! are renumbered into one document here.

use crate::error::PrintError;
use crate::render::Orientation;
use pdf_writer::{Content, Finish, Name, Pdf, Rect, Ref, TextStr};
use resvg::usvg;
use std::collections::HashMap;

pub fn write(sides: &[(&usvg::Tree, Orientation)]) -> Result<Vec<u8>, PrintError> {
    let mut alloc = Ref::new(1);
    let catalog = alloc.bump();
    let page_tree = alloc.bump();
    let info = alloc.bump();
    let pages: Vec<(Ref, Ref)> = sides.iter().map(|_| (alloc.bump(), alloc.bump())).collect();

    let mut pdf = Pdf::new();
    pdf.catalog(catalog).pages(page_tree);
    pdf.pages(page_tree)
        .kids(pages.iter().map(|(page, _)| *page))
        .count(pages.len() as i32);
    pdf.document_info(info)
        .producer(TextStr("Tessera"))
        .title(TextStr("Card faces"));

    let name = Name(b"Face");
    for ((tree, orientation), (page_ref, content_ref)) in sides.iter().zip(&pages) {
        let (chunk, xobject) = svg2pdf::to_chunk(tree, svg2pdf::ConversionOptions::default())
            .map_err(|e| PrintError::Pdf(e.to_string()))?;
        let mut map = HashMap::new();
        let chunk = chunk.renumber(|old| *map.entry(old).or_insert_with(|| alloc.bump()));
        let xobject = map
            .get(&xobject)
            .copied()
            .ok_or_else(|| PrintError::Pdf("svg2pdf returned no drawing".into()))?;

        let (w, h) = orientation.size_pt();
        let mut page = pdf.page(*page_ref);
        page.media_box(Rect::new(0.0, 0.0, w, h));
        page.parent(page_tree);
        page.contents(*content_ref);
        page.resources().x_objects().pair(name, xobject);
        page.finish();

        let mut content = Content::new();
        content.save_state();
        content.transform([w, 0.0, 0.0, h, 0.0, 0.0]);
        content.x_object(name);
        content.restore_state();
        pdf.stream(*content_ref, &content.finish());
        pdf.extend(&chunk);
    }
    Ok(pdf.finish())
}
