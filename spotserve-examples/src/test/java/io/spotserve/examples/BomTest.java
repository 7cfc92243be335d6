package io.spotserve.examples;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import javax.xml.parsers.DocumentBuilderFactory;
import org.junit.jupiter.api.Test;
import org.w3c.dom.Document;
import org.w3c.dom.Element;
import org.w3c.dom.Node;
import org.w3c.dom.NodeList;

/** The BOM manages exactly the published jar modules of the build (a module added later cannot be forgotten). */
class BomTest {
    private static final Path ROOT = Path.of("..");

    private static Document read(Path pom) throws Exception {
        DocumentBuilderFactory f = DocumentBuilderFactory.newInstance();
        f.setFeature("http://apache.org/xml/features/disallow-doctype-decl", true);
        return f.newDocumentBuilder().parse(pom.toFile());
    }

    /** Text of the direct child {@code name} of {@code e}, or null. */
    private static String child(Element e, String name) {
        for (Node n = e.getFirstChild(); n != null; n = n.getNextSibling()) {
            if (n instanceof Element c && c.getTagName().equals(name)) {
                return c.getTextContent().trim();
            }
        }
        return null;
    }

    private static List<String> texts(Document d, String tag) {
        NodeList nodes = d.getElementsByTagName(tag);
        List<String> out = new ArrayList<>();
        for (int i = 0; i < nodes.getLength(); i++) {
            out.add(nodes.item(i).getTextContent().trim());
        }
        return out;
    }

    @Test
    void bomManagesEveryPublishedJarModule() throws Exception {
        Set<String> published = new TreeSet<>();
        for (String module : texts(read(ROOT.resolve("pom.xml")), "module")) {
            Document pom = read(ROOT.resolve(module).resolve("pom.xml"));
            Element project = pom.getDocumentElement();
            String packaging = child(project, "packaging");
            boolean skipped = texts(pom, "maven.deploy.skip").contains("true");
            if (!skipped && (packaging == null || packaging.equals("jar"))) {
                published.add(child(project, "artifactId"));
            }
        }
        assertFalse(published.isEmpty());
        Set<String> managed = new TreeSet<>();
        NodeList deps = read(ROOT.resolve("spotserve-bom/pom.xml")).getElementsByTagName("dependency");
        for (int i = 0; i < deps.getLength(); i++) {
            managed.add(child((Element) deps.item(i), "artifactId"));
        }
        assertEquals(published, managed);
        assertFalse(Files.exists(ROOT.resolve("spotserve-bom/src")), "the BOM is only a pom");
    }
}
