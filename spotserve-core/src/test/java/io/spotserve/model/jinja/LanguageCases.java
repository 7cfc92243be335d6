package io.spotserve.model.jinja;

import java.util.List;

/** Small templates covering the language, rendered by both our interpreter and the reference. */
final class LanguageCases {
    private LanguageCases() {
    }

    static final List<String> TEMPLATES = List.of(
            // output, literals, arithmetic
            "Hello {{ name }}!",
            "{{ 1 + 2 }} {{ 7 - 10 }} {{ 2 * 3 }} {{ 7 / 2 }} {{ 7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ 2 ** 10 }}",
            "{{ f }} {{ f * 2 }} {{ whole }} {{ 1.0 }} {{ 0.1 + 0.2 }} {{ n / 7 }} {{ -f }} {{ n + f }}",
            "{{ true }} {{ false }} {{ none }} {{ True }} [{{ undefined_thing }}]",
            "{{ 'a' ~ 1 ~ true ~ none_x }}|{{ 'x' + 'y' }}|{{ 1 ~ 2 }}|{{ 'n=' + n }}",
            "{{ 'single' }} {{ \"double\" }} {{ 'esc\\n\\t\\\\ \\' \\\"' }} {{ 'a' 'b' }}",
            "{{ [1, 'two', none, true, 2.5] }} {{ {'a': 1, 'b': [1, 2], 'c': {'d': none}} }}",
            "{{ (1, 2)[1] }} {{ (1, 2) | length }} {{ [] }} {{ {} }}",
            // comparison, logic, membership
            "{{ 1 < 2 }} {{ 2 <= 2 }} {{ 3 > 4 }} {{ 1 == 1.0 }} {{ 'a' == 'a' }} {{ 'a' != 'b' }} {{ none == none }}",
            "{{ 1 and 'x' }} {{ 0 or 'y' }} {{ not 0 }} {{ not not 'a' }} {{ '' or none }} {{ [] and 1 }}",
            "{{ 'ell' in 'hello' }} {{ 'z' not in 'hello' }} {{ 2 in items }} {{ 5 in items }} {{ 'k' in d }}"
                    + " {{ 'zz' not in d }} {{ 'x' in undefined_list }}",
            "{{ 'yes' if n > 3 else 'no' }} {{ 'a' if false else 'b' if true else 'c' }} [{{ 'x' if false }}]",
            // attribute and subscript access, slicing
            "{{ d.k }} {{ d['k'] }} {{ d.a[1] }} {{ d['nested']['y'] }} {{ d.nested.x }} [{{ d.missing }}]",
            "{{ items[0] }} {{ items[-1] }} [{{ items[10] }}] {{ items[1:] }} {{ items[:2] }} {{ items[::-1] }}"
                    + " {{ items[::2] }} {{ items[-2:] }}",
            "{{ name[0] }} {{ name[-1] }} {{ name[1:3] }} {{ name[::-1] }} {{ 'héllo wörld'[2:8] }}",
            "{{ users[0].name }} {{ users[1]['age'] }} {{ d.get('k') }} {{ d.get('zz', 'dflt') }} [{{ d.get('zz') }}]",
            "{{ items.length }} {{ name.length }}",
            // string methods
            "[{{ s.strip() }}] [{{ s.lstrip() }}] [{{ s.rstrip() }}] {{ s.upper() }} {{ s.lower() }}",
            "{{ name.startswith('Wo') }} {{ name.endswith('ld') }} {{ name.startswith(['x', 'W']) }}"
                    + " {{ name.endswith(('q', 'd')) }}",
            "{{ 'a,b,,c'.split(',') }} {{ ' a  b c '.split() }} {{ 'a,b,c'.split(',', 1) }} {{ 'x y z'.split(none, 1) }}",
            "{{ 'aXbXc'.replace('X', '-') }} {{ 'aXbXc'.replace('X', '-', 1) }} {{ 'hello world'.title() }}"
                    + " {{ 'hello World'.capitalize() }}",
            // filters
            "[{{ s | trim }}] {{ name | upper }} {{ name | lower }} {{ name | length }} {{ items | length }}"
                    + " {{ d | length }}",
            "{{ items | first }} {{ items | last }} {{ items | sort }} {{ words | sort }} {{ items | reverse }}"
                    + " {{ words | join(', ') }} {{ items | join }} {{ [1, 1, 2, 1] | unique }}",
            "{{ d | tojson }} {{ users | tojson }} {{ 'x\"y\\n' | tojson }} {{ f | tojson }} {{ none | tojson }}",
            "{{ d | tojson(indent=2) }}",
            "{{ users | tojson(indent=4) }}",
            "{{ {'é': 'ü', 'b': 1} | tojson(ensure_ascii=true) }} {{ {'b': 1, 'a': 2} | tojson(sort_keys=true) }}"
                    + " {{ [1, 2] | tojson(separators=(',', ':')) }}",
            "{{ undefined_thing | default('fallback') }} {{ empty | default('e', true) }} {{ name | default('x') }}",
            "{% for k, v in d | items %}{{ k }}={{ v }};{% endfor %} {{ d | items }}",
            "{{ n | string }} {{ f | string }} {{ true | string }} {{ items | string }} {{ '42' | int + 1 }}"
                    + " {{ '3.5' | float }} {{ 'x' | int }} {{ f | int }} {{ n | float }} {{ -3 | abs }}",
            "{{ 'a\\nb\\n\\nc' | indent }}|{{ 'a\\nb' | indent(2, true) }}|{{ 'a\\n\\nb' | indent(width='> ', blank=true) }}",
            "{{ 'hello world' | replace('o', '0') }} {{ 'hello' | capitalize }} {{ 'hello world' | title }}",
            "{{ users | selectattr('admin') | map(attribute='name') | join(',') }}"
                    + " {{ users | rejectattr('admin') | map(attribute='name') | list }}"
                    + " {{ users | sort(attribute='age') | map(attribute='name') | join }}",
            "{{ users | selectattr('name', 'equalto', 'bob') | length }} {{ words | sort(reverse=true) }}"
                    + " {{ words | sort(case_sensitive=true) }} {{ d.nested | dictsort }}",
            // tests
            "{{ name is defined }} {{ nope is defined }} {{ nope is undefined }} {{ none is none }} {{ n is not none }}",
            "{{ name is string }} {{ n is number }} {{ f is number }} {{ n is integer }} {{ d is mapping }}"
                    + " {{ items is iterable }} {{ name is iterable }} {{ d is iterable }} {{ items is sequence }}",
            "{{ true is boolean }} {{ n is odd }} {{ 4 is even }} {{ 'abc' is lower }} {{ 'ABC' is upper }}"
                    + " {{ range is callable }} {{ true is true }} {{ 0 is false }}",
            // control flow
            "{% if n > 10 %}big{% elif n > 5 %}medium{% else %}small{% endif %}",
            "{% for i in items %}{{ loop.index }}/{{ loop.index0 }}/{{ loop.length }}/{{ loop.first }}/{{ loop.last }}"
                    + "/{{ loop.revindex }}/{{ loop.revindex0 }} {% endfor %}",
            "{% for i in items %}{{ loop.previtem }}<{{ i }}>{{ loop.nextitem }} {% endfor %}",
            "{% for i in items if i > 1 %}{{ i }}{{ ',' if not loop.last }}{% endfor %}",
            "{% for i in [] %}x{% else %}empty{% endfor %}",
            "{% for i in range(10) %}{% if i == 2 %}{% continue %}{% endif %}{% if i == 5 %}{% break %}{% endif %}"
                    + "{{ i }}{% endfor %} {{ range(3) }} {{ range(1, 10, 3) }} {{ range(5, 0, -2) }}",
            "{% for k in d %}{{ k }} {% endfor %}",
            "{% for a, b in [[1, 2], [3, 4]] %}{{ a + b }} {% endfor %}",
            "{% for u in users %}{% for k, v in u.items() %}{{ k }}:{{ v }} {% endfor %}| {% endfor %}",
            // set, namespace, scoping
            "{% set x = 5 %}{% set y = x * 2 %}{{ x }} {{ y }}",
            "{% set a, b = 1, 2 %}{{ a }} {{ b }}",
            "{% set x = 1 %}{% for i in items %}{% set x = i %}{% endfor %}{{ x }}",
            "{% set ns = namespace(total=0, seen=[]) %}{% for i in items %}{% set ns.total = ns.total + i %}"
                    + "{% endfor %}{{ ns.total }} {{ ns.seen }}",
            "{% set block %}inside {{ name }}{% endset %}[{{ block }}]",
            "{% if true %}{% set inner = 'set in if' %}{% endif %}{{ inner }}",
            // whitespace control and comments
            "a  {{- ' b ' -}}  c {# comment #} d {#- trimmed -#} e",
            "line1\n    {% if true %}\n    indented\n    {% endif %}\nline2\n",
            "{%- for i in items -%}\n  {{ i }}\n{%- endfor -%}\n",
            "  {% for i in items %}\n{{ i }}\n  {% endfor %}\n  end",
            "{{ 'a' }}\n{{ 'b' }}\n{# c #}\nd\n\n",
            "x {%- if true %} y {% endif -%} z",
            // macros and filter blocks
            "{% macro greet(who, punct='!') %}Hi {{ who }}{{ punct }}{% endmacro %}{{ greet('Ann') }}"
                    + " {{ greet('Bob', '?') }} {{ greet(punct='.', who='Cy') }}",
            "{% filter upper %}shout {{ name }}{% endfilter %}");

    /** Templates both implementations must reject. */
    static final List<String> ERRORS = List.of(
            "{{ raise_exception('custom failure') }}",
            "{{ none + 1 }}",
            "{{ undefined_x + 1 }}",
            "{% for i in 42 %}{% endfor %}",
            "{{ name | nosuchfilter }}",
            "{{ name is nosuchtest }}",
            "{{ name() }}",
            "{% if %}{% endif %}",
            "{% for %}",
            "{{ 1 + }}",
            "{% call foo() %}{% endcall %}",
            "{{ d[1] }}");
}
